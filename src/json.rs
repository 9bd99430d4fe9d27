//! Values, rows and statement outputs as JSON: the server's answers, the
//! remote shell's reading of them and the profiles [`crate::ProfileRead`]
//! renders, so that a value survives the trip with its type.

use crate::{Column, Event, Output, Rows, Type, Value};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A value as JSON: NULL is `null`, tags an array of strings, a vector an array
/// of numbers in their shortest round-trip form. Floats keep a decimal point or
/// an exponent, so they read back as floats.
#[derive(Debug, Clone, Copy)]
pub struct JsonValue<'a>(pub &'a Value);

/// An event as the JSON object it is read from ([`Event::from_json`]):
/// `user`, `type`, `ts` (epoch ms) and its fields.
#[derive(Debug, Clone, Copy)]
pub struct JsonEvent<'a>(pub &'a Event);

impl Serialize for JsonEvent<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ev = self.0;
        let mut map = s.serialize_map(Some(ev.fields.len() + 3))?;
        map.serialize_entry("user", &ev.user)?;
        map.serialize_entry("type", &ev.event_type)?;
        map.serialize_entry("ts", &ev.ts)?;
        for (name, value) in &ev.fields {
            map.serialize_entry(name, &JsonValue(value))?;
        }
        map.end()
    }
}

impl Serialize for JsonValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_none(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            // serde_json writes non-finite floats as null.
            Value::Float(f) => s.serialize_f64(*f),
            Value::String(v) => s.serialize_str(v),
            Value::Tags(tags) => tags.serialize(s),
            Value::Vector(v) => {
                let mut seq = s.serialize_seq(Some(v.len()))?;
                for x in v {
                    seq.serialize_element(x)?;
                }
                seq.end()
            }
            // A keyed feature: an object, largest value first.
            Value::Map(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, x) in m {
                    map.serialize_entry(k, x)?;
                }
                map.end()
            }
        }
    }
}

/// One row as a JSON object keyed by column name, in column order.
#[derive(Debug, Clone, Copy)]
pub struct JsonRow<'a> {
    /// The columns.
    pub columns: &'a [Column],
    /// The row's values, one per column.
    pub values: &'a [Value],
}

impl Serialize for JsonRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.columns.len()))?;
        for (c, v) in self.columns.iter().zip(self.values) {
            map.serialize_entry(&c.name, &JsonValue(v))?;
        }
        map.end()
    }
}

/// A statement's output as the server answers it:
/// `{"columns": [...], "types": [...], "rows": [[...]]}`, plus `summary` (and
/// `count`) for a statement that returns no rows.
#[derive(Debug, Clone, Copy)]
pub struct JsonOutput<'a>(pub &'a Output);

impl Serialize for JsonOutput<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct RowList<'a>(&'a [Vec<Value>]);
        impl Serialize for RowList<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for row in self.0 {
                    let values: Vec<JsonValue<'_>> = row.iter().map(JsonValue).collect();
                    seq.serialize_element(&values)?;
                }
                seq.end()
            }
        }
        let empty = Rows::default();
        let rows = self.0.rows().unwrap_or(&empty);
        let names: Vec<&str> = rows.columns.iter().map(|c| c.name.as_str()).collect();
        let types: Vec<String> = rows.columns.iter().map(|c| c.ty.to_string()).collect();
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("columns", &names)?;
        map.serialize_entry("types", &types)?;
        map.serialize_entry("rows", &RowList(&rows.rows))?;
        if let Output::Done { summary, count } = self.0 {
            map.serialize_entry("summary", summary)?;
            map.serialize_entry("count", count)?;
        }
        map.end()
    }
}

/// A column type from its name as [`Type`]'s `Display` writes it.
pub fn type_from_name(name: &str) -> Type {
    match name {
        "bool" => Type::Bool,
        "int" => Type::Int,
        "float" => Type::Float,
        "string" => Type::String,
        "tags" => Type::Tags,
        "vector" => Type::Vector,
        "map" => Type::Map,
        _ => Type::Null,
    }
}

/// A JSON value read back as a value of column type `ty` (or, for an unknown
/// type, of the type its JSON form suggests).
pub fn value_from_json(v: &serde_json::Value, ty: Type) -> Value {
    use serde_json::Value as J;
    match (v, ty) {
        (J::Null, _) => Value::Null,
        (J::Array(items), Type::Tags) => Value::Tags(
            items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect(),
        ),
        (J::Array(items), Type::Vector) => Value::Vector(
            items
                .iter()
                .map(|i| i.as_f64().unwrap_or(f64::NAN) as f32)
                .collect(),
        ),
        (J::Object(entries), Type::Map) => {
            let mut m: Vec<(String, f64)> = entries
                .iter()
                .map(|(k, x)| (k.clone(), x.as_f64().unwrap_or(f64::NAN)))
                .collect();
            // JSON objects do not keep their order: largest first again.
            m.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            Value::Map(m)
        }
        (J::Number(n), Type::Float) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        (J::Number(n), _) if n.is_i64() => Value::Int(n.as_i64().unwrap_or_default()),
        (J::Number(n), _) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        (J::Bool(b), _) => Value::Bool(*b),
        (J::String(s), _) => Value::String(s.clone()),
        (other, _) => Value::from_json(other).unwrap_or_else(|_| Value::String(other.to_string())),
    }
}

/// A query answer: `{"columns", "types", "rows"}`, with `summary` for a
/// statement that returns no rows; `None` when it is not one.
pub fn output_from_json(json: &serde_json::Value) -> Option<Output> {
    if let Some(summary) = json["summary"].as_str() {
        return Some(Output::Done {
            summary: summary.to_owned(),
            count: json["count"].as_u64(),
        });
    }
    let names = json["columns"].as_array()?;
    let types = json["types"].as_array();
    let columns: Vec<Column> = names
        .iter()
        .enumerate()
        .map(|(i, n)| Column {
            name: n.as_str().map_or_else(|| n.to_string(), str::to_owned),
            ty: types
                .and_then(|t| t.get(i))
                .and_then(|t| t.as_str())
                .map_or(Type::Null, type_from_name),
        })
        .collect();
    let rows = json["rows"]
        .as_array()?
        .iter()
        .map(|r| {
            let cells = r.as_array()?;
            Some(
                columns
                    .iter()
                    .zip(cells)
                    .map(|(c, v)| value_from_json(v, c.ty))
                    .collect(),
            )
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Output::Rows(Rows { columns, rows }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_type_through_json() {
        let values = [
            (Value::Null, Type::Null),
            (Value::Bool(true), Type::Bool),
            (Value::Int(-3), Type::Int),
            (Value::Float(1.0), Type::Float),
            (Value::Float(0.1), Type::Float),
            (Value::Float(1e300), Type::Float),
            (Value::String("a\"b".into()), Type::String),
            (Value::Tags(vec!["x".into(), "y".into()]), Type::Tags),
            (Value::Tags(vec![]), Type::Tags),
            (Value::Vector(vec![0.1, -2.5, 3e-7]), Type::Vector),
            (
                Value::Map(vec![("tech".into(), 3.5), ("art".into(), 1.0)]),
                Type::Map,
            ),
            (Value::Map(vec![]), Type::Map),
        ];
        for (v, ty) in values {
            let text = serde_json::to_string(&JsonValue(&v)).expect("serializes");
            let back: serde_json::Value = serde_json::from_str(&text).expect("parses");
            assert_eq!(value_from_json(&back, ty), v, "{text}");
            // Without the column type, the JSON form alone tells ints from floats.
            if matches!(v, Value::Int(_) | Value::Float(_)) {
                assert_eq!(value_from_json(&back, Type::Null), v, "{text}");
            }
        }
        assert_eq!(
            serde_json::to_string(&JsonValue(&Value::Vector(vec![0.1]))).ok(),
            Some("[0.1]".into())
        );
        assert_eq!(
            serde_json::to_string(&JsonValue(&Value::Float(2.0))).ok(),
            Some("2.0".into())
        );
    }
}
