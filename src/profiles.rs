//! Profiles read for an answer: at one time, windows over one span, only
//! the items asked for, with the segments each user is in, rendered as
//! JSON (or, for the Python package, straight into Python objects through
//! the same `Serialize`). The server's `GET /v1/users/{id}` and `POST
//! /v1/profiles`, and the Python package's `profile` and `profiles`, all
//! read them here, so that a profile has one shape wherever it is read.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde::ser::SerializeMap;

use crate::json::JsonValue;
use crate::{Bucket, Db, DefKind, Error, Pins, Profile, Result, Value};

/// How profiles are read and shown: at a time, windows aggregated over a
/// span ending then, and the items asked for (all, segments included, when
/// `None`).
#[derive(Debug, Clone)]
pub struct ProfileRead {
    as_of: i64,
    span: i64,
    fields: Option<HashSet<String>>,
}

/// The segments each user is in, by user id (users in none are absent).
type Segments = HashMap<String, Vec<String>>;

impl ProfileRead {
    /// A read at `as_of` (epoch ms) with windows over `span_ms`, showing only
    /// `fields` (attribute, feature, vector and window names, and
    /// `segments`) when given.
    ///
    /// # Errors
    /// An invalid argument naming a field the catalog does not define, with
    /// the closest name that it does.
    pub fn new(db: &Db, as_of: i64, span_ms: i64, fields: Option<Vec<String>>) -> Result<Self> {
        let fields = match fields {
            None => None,
            Some(names) => {
                let bindings = db.engine().bindings();
                let catalog = &bindings.catalog;
                for n in &names {
                    let shown = matches!(
                        catalog.kind_of(n),
                        Some(
                            DefKind::Attribute
                                | DefKind::Feature
                                | DefKind::Vector
                                | DefKind::Window
                        )
                    );
                    if n != "segments" && !shown {
                        let known = catalog
                            .attributes
                            .iter()
                            .map(|d| d.name.as_str())
                            .chain(catalog.features.iter().map(|d| d.name.as_str()))
                            .chain(catalog.vectors.iter().map(|d| d.name.as_str()))
                            .chain(catalog.windows.iter().map(|d| d.name.as_str()))
                            .chain(["segments"]);
                        let hint = crate::closest(n, known)
                            .map(|c| format!(" (did you mean '{c}'?)"))
                            .unwrap_or_default();
                        return Err(Error::Storage(profiledb_storage::Error::InvalidArgument(
                            format!("fields: no attribute, feature, vector or window '{n}'{hint}"),
                        )));
                    }
                }
                Some(names.into_iter().collect())
            }
        };
        Ok(ProfileRead {
            as_of,
            span: span_ms,
            fields,
        })
    }

    /// The time the profiles are read at, epoch ms.
    pub fn as_of(&self) -> i64 {
        self.as_of
    }

    /// The profiles of `ids` as JSON objects in order (`None` for a user
    /// that does not exist), read from one view of the database, their
    /// segments from one query. The object holds `user`, `as_of`,
    /// `first_seen`, `last_seen`, `events`, then `attributes`, `features`,
    /// `vectors` and `windows` keyed by name, then `segments` when shown.
    ///
    /// # Errors
    /// The storage's failure.
    pub fn read(&self, db: &Db, ids: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        let all: Vec<&str> = ids.iter().map(String::as_str).collect();
        let segments = self.segments(db, &all)?;
        let view = db.engine().view(Pins::NONE)?;
        // Each core reads its share of the ids and renders it in one pass:
        // one hand-off to the pool, not one to read and one to render.
        let parts = crate::on_cores(ids, |chunk| {
            let fetched = Fetched {
                read: self,
                profiles: crate::read_batch(&view, chunk, self.as_of, self.span)?,
                segments: Cow::Borrowed(&segments),
            };
            (0..chunk.len())
                .map(|i| {
                    fetched
                        .view(i, false)
                        .map(|v| {
                            serde_json::to_vec(&v).map_err(|e| {
                                Error::Storage(profiledb_storage::Error::Engine(format!(
                                    "profile '{}' could not be rendered: {e}",
                                    v.profile.user
                                )))
                            })
                        })
                        .transpose()
                })
                .collect::<Result<Vec<_>>>()
        })?;
        Ok(parts.into_iter().flatten().collect())
    }

    /// The profiles of `ids`, read as [`ProfileRead::read`] reads them, to
    /// be rendered by [`Fetched::view`].
    ///
    /// # Errors
    /// The storage's failure.
    pub fn fetch(&self, db: &Db, ids: &[String]) -> Result<Fetched<'_>> {
        let profiles = db.profiles_with_span(ids, self.as_of, self.span)?;
        let present: Vec<&str> = profiles.iter().flatten().map(|p| p.user.as_str()).collect();
        let segments = self.segments(db, &present)?;
        Ok(Fetched {
            read: self,
            profiles,
            segments: Cow::Owned(segments),
        })
    }

    /// The segments of `ids` when the read shows them.
    fn segments(&self, db: &Db, ids: &[&str]) -> Result<Option<Segments>> {
        if self
            .fields
            .as_ref()
            .is_some_and(|f| !f.contains("segments"))
        {
            return Ok(None);
        }
        segments_of(db, ids, self.as_of).map(Some)
    }
}

/// Profiles read by [`ProfileRead::fetch`], in the order of the ids asked
/// for.
#[derive(Debug)]
pub struct Fetched<'r> {
    read: &'r ProfileRead,
    profiles: Vec<Option<Profile>>,
    segments: Cow<'r, Option<Segments>>,
}

impl Fetched<'_> {
    /// How many ids were asked for.
    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    /// Whether no id was asked for.
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }

    /// The `i`-th profile as it serializes (`None` for a user that does
    /// not exist, or past the end): the JSON object of
    /// [`ProfileRead::read`]. With `decimal_floats`, a vector's elements
    /// serialize as the 64-bit floats their JSON text reads back as (`0.1`
    /// rather than 0.1f32 widened, 0.10000000149011612), for serializers
    /// into other representations to give what a JSON reader would.
    pub fn view(&self, i: usize, decimal_floats: bool) -> Option<ProfileView<'_>> {
        let p = self.profiles.get(i)?.as_ref()?;
        Some(ProfileView {
            profile: p,
            fields: self.read.fields.as_ref(),
            segments: self
                .segments
                .as_ref()
                .as_ref()
                .map(|s| s.get(&p.user).map_or(&[][..], Vec::as_slice)),
            decimal_floats,
        })
    }
}

/// The segments `ids` are in at `as_of`, in definition order: one point
/// query testing each segment for every user, the ids and the time bound
/// as parameters.
fn segments_of(db: &Db, ids: &[&str], as_of: i64) -> Result<Segments> {
    let names: Vec<String> = {
        let bindings = db.engine().bindings();
        bindings
            .catalog
            .segments
            .iter()
            .map(|s| s.name.clone())
            .collect()
    };
    if names.is_empty() || ids.is_empty() {
        return Ok(Segments::new());
    }
    let tests: Vec<String> = names
        .iter()
        .map(|n| format!("IN SEGMENT \"{}\"", n.replace('"', "\"\"")))
        .collect();
    let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT id, {} FROM users WHERE id IN ({}) AS OF ${}",
        tests.join(", "),
        marks.join(", "),
        ids.len() + 1
    );
    let params: Vec<Value> = ids
        .iter()
        .map(|id| Value::String((*id).to_owned()))
        .chain([Value::Int(as_of)])
        .collect();
    let out = db.execute_params(&sql, &params)?;
    let rows = out.rows().map(|r| r.rows.as_slice()).unwrap_or_default();
    Ok(rows
        .iter()
        .filter_map(|row| {
            let Some(Value::String(id)) = row.first() else {
                return None;
            };
            let ins = names
                .iter()
                .zip(&row[1..])
                .filter(|(_, v)| **v == Value::Bool(true))
                .map(|(n, _)| n.clone())
                .collect();
            Some((id.clone(), ins))
        })
        .collect())
}

/// A profile as it serializes: bookkeeping, then attributes, features,
/// vectors and windows as objects keyed by name (only those the read's
/// `fields` name, when it names some), then the segments the user is in,
/// when they were read.
#[derive(Debug, Clone, Copy)]
pub struct ProfileView<'a> {
    profile: &'a Profile,
    fields: Option<&'a HashSet<String>>,
    segments: Option<&'a [String]>,
    decimal_floats: bool,
}

impl Serialize for ProfileView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let wanted = |name: &str| self.fields.is_none_or(|f| f.contains(name));
        struct Named<'a, F>(&'a [(String, Value)], F, bool);
        impl<F: Fn(&str) -> bool> Serialize for Named<'_, F> {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(None)?;
                for (k, v) in self.0.iter().filter(|(k, _)| (self.1)(k)) {
                    match v {
                        Value::Vector(xs) if self.2 => {
                            m.serialize_entry(k, &DecimalFloats(xs))?;
                        }
                        v => m.serialize_entry(k, &JsonValue(v))?,
                    }
                }
                m.end()
            }
        }
        /// A vector's elements as the f64 of their shortest decimal text.
        struct DecimalFloats<'a>(&'a [f32]);
        impl Serialize for DecimalFloats<'_> {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                let mut buf = ryu::Buffer::new();
                // Not finite: null, as JSON writes it.
                s.collect_seq(self.0.iter().map(|x| {
                    x.is_finite()
                        .then(|| buf.format_finite(*x).parse::<f64>().ok())
                        .flatten()
                }))
            }
        }
        /// A window's aggregate as an object.
        struct Window<'a>(&'a Bucket);
        impl Serialize for Window<'_> {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                let b = self.0;
                let mut m = s.serialize_map(Some(7))?;
                m.serialize_entry("count", &b.count)?;
                m.serialize_entry("sum", &b.sum)?;
                m.serialize_entry("min", &b.min())?;
                m.serialize_entry("max", &b.max())?;
                m.serialize_entry("mean", &b.mean())?;
                m.serialize_entry("stddev", &b.stddev())?;
                m.serialize_entry("sumsq", &b.sumsq)?;
                m.end()
            }
        }
        struct Windows<'a, F>(&'a [(String, Bucket)], F);
        impl<F: Fn(&str) -> bool> Serialize for Windows<'_, F> {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(None)?;
                for (name, b) in self.0.iter().filter(|(k, _)| (self.1)(k)) {
                    m.serialize_entry(name, &Window(b))?;
                }
                m.end()
            }
        }
        let p = self.profile;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("user", &p.user)?;
        m.serialize_entry("as_of", &crate::format_timestamp(p.as_of))?;
        m.serialize_entry("first_seen", &crate::format_timestamp(p.first_seen))?;
        m.serialize_entry("last_seen", &crate::format_timestamp(p.last_seen))?;
        m.serialize_entry("events", &p.events)?;
        m.serialize_entry(
            "attributes",
            &Named(&p.attributes, wanted, self.decimal_floats),
        )?;
        m.serialize_entry("features", &Named(&p.features, wanted, self.decimal_floats))?;
        m.serialize_entry("vectors", &Named(&p.vectors, wanted, self.decimal_floats))?;
        m.serialize_entry("windows", &Windows(&p.windows, wanted))?;
        if let Some(segments) = self.segments {
            m.serialize_entry("segments", segments)?;
        }
        m.end()
    }
}
