//! Typed values: event fields, attribute values and profile cells.

use serde::{Deserialize, Serialize};

use crate::codec::{DecodeError, Reader, Writer, derr};

/// A value carried by an event field or held by a profile.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value.
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit signed integer.
    Int(i64),
    /// A finite 64-bit float.
    Float(f64),
    /// A UTF-8 string.
    String(String),
    /// A set of tags, kept sorted and without duplicates; or, as a query's
    /// `top_keys` gives them, a keyed feature's keys, largest value first.
    Tags(Vec<String>),
    /// An embedding vector.
    Vector(Vec<f32>),
    /// A keyed feature's values by key, largest first.
    Map(Vec<(String, f64)>),
}

/// The largest magnitude a numeric event field may have.
pub const MAX_MAGNITUDE: f64 = 1e100;

/// The type of an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttrType {
    /// 64-bit signed integer.
    Int,
    /// 64-bit float.
    Float,
    /// UTF-8 string.
    String,
    /// Boolean.
    Bool,
    /// A set of string tags.
    Tags,
}

impl std::fmt::Display for AttrType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AttrType::Int => "INT",
            AttrType::Float => "FLOAT",
            AttrType::String => "STRING",
            AttrType::Bool => "BOOL",
            AttrType::Tags => "TAGS",
        })
    }
}

impl Value {
    /// A short name of this value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Tags(_) => "tags",
            Value::Vector(_) => "vector",
            Value::Map(_) => "map",
        }
    }

    /// True for [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as a finite number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) if f.is_finite() => Some(*f),
            _ => None,
        }
    }

    /// Converts an event field to a number for a numeric feature or window. Its
    /// magnitude must be at most [`MAX_MAGNITUDE`], so that sums of squares and
    /// sums of many events stay finite.
    pub(crate) fn to_number(&self) -> Result<f64, String> {
        match self {
            Value::Int(i) => Ok(*i as f64),
            Value::Float(f) if f.is_finite() && f.abs() > MAX_MAGNITUDE => Err(format!(
                "{f:?} exceeds the largest accepted magnitude, 1e100"
            )),
            Value::Float(f) if f.is_finite() => Ok(*f),
            Value::Float(f) => Err(format!("{f:?} is not a finite number")),
            other => Err(format!("expected a number, got {}", other.type_name())),
        }
    }

    /// Converts an event field to a 0/1 label: a bool, or the numbers 0 and 1.
    pub(crate) fn to_label(&self) -> Result<f64, String> {
        match self {
            Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
            Value::Int(0) => Ok(0.0),
            Value::Int(1) => Ok(1.0),
            Value::Float(f) if *f == 0.0 || *f == 1.0 => Ok(*f),
            other => Err(format!(
                "expected a label (true/false or 0/1), got {}",
                describe(other)
            )),
        }
    }

    /// Converts an event field to a vector of the given dimension.
    pub(crate) fn to_vector(&self, dim: usize) -> Result<&[f32], String> {
        match self {
            Value::Vector(v) if v.len() == dim => {
                if let Some(bad) = v.iter().find(|x| !x.is_finite()) {
                    Err(format!("vector element {bad} is not a finite number"))
                } else {
                    Ok(v)
                }
            }
            Value::Vector(v) => Err(format!(
                "expected a vector of dimension {dim}, got dimension {}",
                v.len()
            )),
            Value::Tags(t) if t.is_empty() => Err(format!(
                "expected a vector of dimension {dim}, got dimension 0"
            )),
            other => Err(format!(
                "expected a vector of dimension {dim}, got {}",
                other.type_name()
            )),
        }
    }

    /// Converts a value to an attribute of type `ty`. Integral floats become ints,
    /// ints become floats, a single string becomes a one-tag set.
    pub fn coerce(&self, ty: AttrType) -> Result<Value, String> {
        let bad = || Err(format!("expected {ty}, got {}", describe(self)));
        match (ty, self) {
            (_, Value::Null) => Ok(Value::Null),
            (AttrType::Int, Value::Int(i)) => Ok(Value::Int(*i)),
            (AttrType::Int, Value::Float(f))
                if f.fract() == 0.0
                    && *f >= -9.007_199_254_740_992e15
                    && *f <= 9.007_199_254_740_992e15 =>
            {
                Ok(Value::Int(*f as i64))
            }
            (AttrType::Float, Value::Int(i)) => Ok(Value::Float(*i as f64)),
            (AttrType::Float, Value::Float(f)) if f.is_finite() => Ok(Value::Float(*f)),
            (AttrType::Float, Value::Float(f)) => Err(format!("{f} is not a finite number")),
            (AttrType::String, Value::String(s)) => Ok(Value::String(s.clone())),
            (AttrType::Bool, Value::Bool(b)) => Ok(Value::Bool(*b)),
            (AttrType::Tags, Value::Tags(t)) => Ok(Value::Tags(normalize_tags(t.clone()))),
            (AttrType::Tags, Value::String(s)) => Ok(Value::Tags(vec![s.clone()])),
            (AttrType::Tags, Value::Vector(v)) if v.is_empty() => Ok(Value::Tags(Vec::new())),
            _ => bad(),
        }
    }

    /// Converts a JSON value. Numbers become ints when integral and in range, arrays of
    /// numbers become vectors, arrays of strings become tags. Objects are rejected.
    pub fn from_json(v: &serde_json::Value) -> Result<Value, String> {
        use serde_json::Value as J;
        Ok(match v {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else {
                    match n.as_f64() {
                        Some(f) if f.is_finite() => Value::Float(f),
                        _ => return Err(format!("number {n} is out of range")),
                    }
                }
            }
            J::String(s) => Value::String(s.clone()),
            J::Array(items) if items.iter().all(|i| i.is_string()) && !items.is_empty() => {
                Value::Tags(
                    items
                        .iter()
                        .filter_map(|i| i.as_str().map(str::to_owned))
                        .collect(),
                )
            }
            J::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let f = item
                        .as_f64()
                        .ok_or_else(|| format!("array element {i} is not a number"))?;
                    let x = f as f32;
                    if !x.is_finite() {
                        return Err(format!("array element {i} ({f}) does not fit an f32"));
                    }
                    out.push(x);
                }
                Value::Vector(out)
            }
            J::Object(_) => return Err("objects are not supported as field values".into()),
        })
    }

    /// Writes the value as records store it (a vector's elements as f64).
    pub fn encode(&self, w: &mut Writer) {
        match self {
            Value::Null => w.u8(0),
            Value::Bool(b) => {
                w.u8(1);
                w.u8(u8::from(*b));
            }
            Value::Int(i) => {
                w.u8(2);
                w.i64(*i);
            }
            Value::Float(f) => {
                w.u8(3);
                w.f64(*f);
            }
            Value::String(s) => {
                w.u8(4);
                w.bytes(s.as_bytes());
            }
            Value::Tags(t) => {
                w.u8(5);
                w.u32(t.len() as u32);
                for s in t {
                    w.bytes(s.as_bytes());
                }
            }
            Value::Vector(v) => {
                w.u8(6);
                w.u32(v.len() as u32);
                for x in v {
                    w.f64(f64::from(*x));
                }
            }
            Value::Map(m) => {
                w.u8(8);
                w.u32(m.len() as u32);
                for (k, x) in m {
                    w.bytes(k.as_bytes());
                    w.f64(*x);
                }
            }
        }
    }

    /// [`Value::encode`], but a vector keeps its f32 elements (half the
    /// bytes), as the event history stores fields.
    pub fn encode_compact(&self, w: &mut Writer) {
        match self {
            Value::Vector(v) => {
                w.u8(7);
                w.u32(v.len() as u32);
                for x in v {
                    w.f32(*x);
                }
            }
            other => other.encode(w),
        }
    }

    /// [`Value::decode`] into this value, reusing its buffer when it and the
    /// value read are both strings or both f32 vectors (what replaying the
    /// event history decodes over and over). After an error the value is
    /// unspecified.
    pub fn decode_into(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        match (r.peek_u8(), &mut *self) {
            (Some(4), Value::String(s)) => {
                r.u8()?;
                s.clear();
                s.push_str(r.str()?);
            }
            (Some(7), Value::Vector(v)) => {
                r.u8()?;
                let n = r.u32()? as usize;
                v.clear();
                r.f32s_into(n, v)?;
            }
            _ => *self = Value::decode(r)?,
        }
        Ok(())
    }

    /// Reads a value written by [`Value::encode`] or [`Value::encode_compact`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Value, DecodeError> {
        Ok(match r.u8()? {
            0 => Value::Null,
            1 => match r.u8()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return derr(format!("bad bool byte {b}")),
            },
            2 => Value::Int(r.i64()?),
            3 => Value::Float(r.finite()?),
            4 => Value::String(r.str()?.to_owned()),
            5 => {
                let n = r.u32()? as usize;
                let mut t = Vec::with_capacity(n.min(r.remaining() / 4));
                for _ in 0..n {
                    t.push(r.str()?.to_owned());
                }
                Value::Tags(t)
            }
            6 => {
                let n = r.u32()? as usize;
                let mut v = Vec::with_capacity(n.min(r.remaining() / 8));
                for _ in 0..n {
                    v.push(r.f64_as_f32()?);
                }
                Value::Vector(v)
            }
            7 => {
                let n = r.u32()? as usize;
                let mut v = Vec::new();
                r.f32s_into(n, &mut v)?;
                Value::Vector(v)
            }
            8 => {
                let n = r.u32()? as usize;
                let mut m = Vec::with_capacity(n.min(r.remaining() / 12));
                for _ in 0..n {
                    m.push((r.str()?.to_owned(), r.finite()?));
                }
                Value::Map(m)
            }
            t => return derr(format!("unknown value tag {t}")),
        })
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("string '{s}'"),
        Value::Int(i) => format!("int {i}"),
        Value::Float(f) => format!("float {f}"),
        Value::Bool(b) => format!("bool {b}"),
        other => other.type_name().to_owned(),
    }
}

fn normalize_tags(mut t: Vec<String>) -> Vec<String> {
    t.sort();
    t.dedup();
    t
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::String(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::String(v)
    }
}
impl From<Vec<f32>> for Value {
    fn from(v: Vec<f32>) -> Value {
        Value::Vector(v)
    }
}
impl From<&[f32]> for Value {
    fn from(v: &[f32]) -> Value {
        Value::Vector(v.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_every_variant() -> Result<(), DecodeError> {
        let values = [
            Value::Null,
            Value::Bool(true),
            Value::Int(-42),
            Value::Float(2.5),
            Value::String("north".into()),
            Value::Tags(vec!["a".into(), "b".into()]),
            Value::Vector(vec![0.5, -1.0]),
        ];
        for v in values {
            let mut w = Writer::default();
            v.encode(&mut w);
            let bytes = w.finish();
            let mut r = Reader::new(&bytes);
            assert_eq!(Value::decode(&mut r)?, v);
            r.end()?;
            for n in 0..bytes.len() {
                assert!(Value::decode(&mut Reader::new(&bytes[..n])).is_err());
            }
        }
        Ok(())
    }

    #[test]
    fn coercion() {
        assert_eq!(Value::Float(31.0).coerce(AttrType::Int), Ok(Value::Int(31)));
        assert!(Value::Float(31.5).coerce(AttrType::Int).is_err());
        assert_eq!(Value::Int(3).coerce(AttrType::Float), Ok(Value::Float(3.0)));
        assert!(Value::String("x".into()).coerce(AttrType::Bool).is_err());
        assert_eq!(
            Value::Tags(vec!["b".into(), "a".into(), "b".into()]).coerce(AttrType::Tags),
            Ok(Value::Tags(vec!["a".into(), "b".into()]))
        );
        assert!(Value::Float(f64::NAN).coerce(AttrType::Float).is_err());
    }

    #[test]
    fn json_values() {
        let j: serde_json::Value = serde_json::json!([0.5, 1, -2]);
        assert_eq!(
            Value::from_json(&j),
            Ok(Value::Vector(vec![0.5, 1.0, -2.0]))
        );
        let j = serde_json::json!(["x", "y"]);
        assert_eq!(
            Value::from_json(&j),
            Ok(Value::Tags(vec!["x".into(), "y".into()]))
        );
        assert!(Value::from_json(&serde_json::json!({"a": 1})).is_err());
        assert!(Value::from_json(&serde_json::json!([1, "a"])).is_err());
        assert!(Value::from_json(&serde_json::json!([1e300])).is_err());
        assert_eq!(Value::from_json(&serde_json::json!(7)), Ok(Value::Int(7)));
    }
}
