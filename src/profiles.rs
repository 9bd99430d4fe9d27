//! Profiles read for an answer: at one time, windows over one span, only
//! the items asked for, with the segments each user is in, rendered as
//! JSON (or, for the Python package, straight into Python objects through
//! the same `Serialize`). The server's `GET /v1/users/{id}` and `POST
//! /v1/profiles`, and the Python package's `profile` and `profiles`, all
//! read them here, so that a profile has one shape wherever it is read.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use serde::Serialize;
use serde::ser::SerializeMap;

use crate::json::JsonValue;
use profiledb_storage::{ProfileRef, ProfileRows};

use crate::{Bucket, Db, DefKind, Error, Pins, Result, Value};

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
    /// that does not exist), as [`ProfileRead::read_json`] renders them, each
    /// in a buffer of its own.
    ///
    /// # Errors
    /// The storage's failure.
    pub fn read(&self, db: &Db, ids: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        Ok(self
            .read_json(db, ids)?
            .iter()
            .map(|p| p.map(<[u8]>::to_vec))
            .collect())
    }

    /// The profiles of `ids` as JSON objects in order (`None` for a user
    /// that does not exist), read with their segments from one view of the
    /// database (one moment). The object holds `user`, `as_of`,
    /// `first_seen`, `last_seen`, `events`, then `attributes`, `features`,
    /// `vectors` and `windows` keyed by name, then `segments` when shown.
    ///
    /// # Errors
    /// The storage's failure.
    pub fn read_json(&self, db: &Db, ids: &[String]) -> Result<JsonProfiles> {
        let (view, segments) = self.pin(db, ids)?;
        // Each core reads its share of the ids and renders it in one pass,
        // into one buffer: one hand-off to the pool, not one to read and one
        // to render, and no buffer per profile to grow and free.
        let parts = crate::on_cores(ids, |chunk| {
            let rows = view.profile_rows(chunk, self.as_of, self.span)?;
            let mut text = Vec::with_capacity(chunk.len() * TYPICAL_PROFILE_BYTES);
            let mut spans = Vec::with_capacity(chunk.len());
            for i in 0..chunk.len() {
                let Some(p) = rows.get(i)? else {
                    spans.push(None);
                    continue;
                };
                let start = text.len();
                let v = self.view(p, segments.as_ref(), false);
                serde_json::to_writer(&mut text, &v).map_err(|e| {
                    Error::Storage(profiledb_storage::Error::Engine(format!(
                        "profile '{}' could not be rendered: {e}",
                        p.user()
                    )))
                })?;
                spans.push(Some(start..text.len()));
            }
            Ok((text, spans))
        })?;
        Ok(JsonProfiles { parts })
    }

    /// The profiles of `ids`, read as [`ProfileRead::read`] reads them, to
    /// be rendered by [`Fetched::view`].
    ///
    /// # Errors
    /// The storage's failure.
    pub fn fetch(&self, db: &Db, ids: &[String]) -> Result<Fetched<'_>> {
        let (view, segments) = self.pin(db, ids)?;
        let parts = crate::on_cores(ids, |chunk| {
            let rows = view.profile_rows(chunk, self.as_of, self.span)?;
            // A row that cannot be a profile fails the read here, not when
            // it is shown.
            for i in 0..rows.len() {
                rows.get(i)?;
            }
            Ok(rows)
        })?;
        Ok(Fetched {
            read: self,
            parts,
            segments,
        })
    }

    /// How `profile` shows in this read, in `segments` when they were read.
    fn view<'a>(
        &'a self,
        profile: ProfileRef<'a>,
        segments: Option<&'a Segments>,
        decimal_floats: bool,
    ) -> ProfileView<'a> {
        ProfileView {
            profile,
            fields: self.fields.as_ref(),
            segments: segments.map(|s| s.get(profile.user()).map_or(&[][..], Vec::as_slice)),
            decimal_floats,
        }
    }

    /// The view a read of `ids` reads their profiles from, and the segments
    /// they are in, when the read shows them, read in that same view: a
    /// profile and its segments are of one moment, and the view holds the
    /// vector index when a segment tests similarity.
    fn pin<'d>(&self, db: &'d Db, ids: &[String]) -> Result<(View<'d>, Option<Segments>)> {
        let shown = self.fields.as_ref().is_none_or(|f| f.contains("segments"));
        let engine = db.engine();
        let mut bindings = engine.bindings();
        // Each attempt loses only to a schema change in between.
        for _ in 0..16 {
            let query = match shown {
                true => SegmentQuery::new(Arc::clone(&bindings), ids, self.as_of, engine.now())?,
                false => None,
            };
            let view = engine.view(query.as_ref().map_or(Pins::NONE, SegmentQuery::pins))?;
            let segments = match query {
                Some(query) => query.run(&view)?,
                // Nothing to ask: the view's catalog must define no segment either.
                None if shown => Arc::ptr_eq(view.bindings(), &bindings).then(Segments::new),
                None => return Ok((view, None)),
            };
            match segments {
                Some(segments) => return Ok((view, Some(segments))),
                None => bindings = Arc::clone(view.bindings()),
            }
        }
        Err(Error::Storage(profiledb_storage::Error::Engine(
            "the schema kept changing while profiles were read; read them again".into(),
        )))
    }
}

/// The JSON size a chunk's buffer is first made for, per profile: a few
/// features, a vector and a window render to about 600 bytes.
const TYPICAL_PROFILE_BYTES: usize = 512;

/// Profiles rendered as JSON by [`ProfileRead::read_json`], in the order of
/// the ids asked for.
#[derive(Debug, Default)]
pub struct JsonProfiles {
    /// Each core's share, in order.
    parts: Vec<JsonShare>,
}

/// A share of [`JsonProfiles`]: its text, and for each of its ids the span
/// of the profile in it (`None` for a user that does not exist).
type JsonShare = (Vec<u8>, Vec<Option<Range<usize>>>);

impl JsonProfiles {
    /// How many ids were asked for.
    pub fn len(&self) -> usize {
        self.parts.iter().map(|(_, spans)| spans.len()).sum()
    }

    /// Whether no id was asked for.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes of every profile together.
    pub fn text_len(&self) -> usize {
        self.parts.iter().map(|(text, _)| text.len()).sum()
    }

    /// Each id's profile as a JSON object, in order; `None` for a user that
    /// does not exist.
    pub fn iter(&self) -> impl Iterator<Item = Option<&[u8]>> {
        self.parts.iter().flat_map(|(text, spans)| {
            spans
                .iter()
                .map(move |span| span.clone().and_then(|r| text.get(r)))
        })
    }
}

/// A view of the database, as [`ProfileRead`] reads profiles from.
type View<'d> = crate::ReadView<'d, profiledb_storage::kv::rocks::RocksKv>;

/// The query testing every segment for each of some users, at a time.
struct SegmentQuery {
    /// The segments' names, in definition order: the query's columns after
    /// the id.
    names: Vec<String>,
    query: profiledb_query::Prepared,
}

impl SegmentQuery {
    /// One point query testing each segment of `bindings` for every user
    /// of `ids`, the ids and the time bound as parameters; `None` when there
    /// is no segment or no id.
    fn new(
        bindings: Arc<profiledb_storage::catalog::Bindings>,
        ids: &[String],
        as_of: i64,
        now: i64,
    ) -> Result<Option<SegmentQuery>> {
        let names: Vec<String> = bindings
            .catalog
            .segments
            .iter()
            .map(|s| s.name.clone())
            .collect();
        if names.is_empty() || ids.is_empty() {
            return Ok(None);
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
            .map(|id| Value::String(id.clone()))
            .chain([Value::Int(as_of)])
            .collect();
        let query = profiledb_query::Prepared::new(&sql, &params, bindings, now)?;
        Ok(Some(SegmentQuery { names, query }))
    }

    fn pins(&self) -> Pins {
        self.query.pins()
    }

    /// The segments each user is in, read in `view`; `None` when the view's
    /// catalog is not the one the query was made for.
    fn run(self, view: &View<'_>) -> Result<Option<Segments>> {
        let Some(rows) = self.query.run(view, &profiledb_query::Limits::default())? else {
            return Ok(None);
        };
        Ok(Some(
            rows.rows
                .iter()
                .filter_map(|row| {
                    let Some(Value::String(id)) = row.first() else {
                        return None;
                    };
                    let ins = self
                        .names
                        .iter()
                        .zip(&row[1..])
                        .filter(|(_, v)| **v == Value::Bool(true))
                        .map(|(n, _)| n.clone())
                        .collect();
                    Some((id.clone(), ins))
                })
                .collect(),
        ))
    }
}

/// Profiles read by [`ProfileRead::fetch`], in the order of the ids asked
/// for.
#[derive(Debug)]
pub struct Fetched<'r> {
    read: &'r ProfileRead,
    /// Each core's share, in order.
    parts: Vec<ProfileRows>,
    segments: Option<Segments>,
}

impl Fetched<'_> {
    /// How many ids were asked for.
    pub fn len(&self) -> usize {
        self.parts.iter().map(ProfileRows::len).sum()
    }

    /// Whether no id was asked for.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th profile as it serializes (`None` for a user that does
    /// not exist, or past the end): the JSON object of
    /// [`ProfileRead::read`]. With `decimal_floats`, a vector's elements
    /// serialize as the 64-bit floats their JSON text reads back as (`0.1`
    /// rather than 0.1f32 widened, 0.10000000149011612), for serializers
    /// into other representations to give what a JSON reader would.
    pub fn view(&self, mut i: usize, decimal_floats: bool) -> Option<ProfileView<'_>> {
        for part in &self.parts {
            if i < part.len() {
                // `fetch` checked every row.
                let p = part.get(i).ok()??;
                return Some(self.read.view(p, self.segments.as_ref(), decimal_floats));
            }
            i -= part.len();
        }
        None
    }
}

/// A profile as it serializes: bookkeeping, then attributes, features,
/// vectors and windows as objects keyed by name (only those the read's
/// `fields` name, when it names some), then the segments the user is in,
/// when they were read.
#[derive(Debug, Clone, Copy)]
pub struct ProfileView<'a> {
    profile: ProfileRef<'a>,
    fields: Option<&'a HashSet<String>>,
    segments: Option<&'a [String]>,
    decimal_floats: bool,
}

impl Serialize for ProfileView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let wanted = |name: &str| self.fields.is_none_or(|f| f.contains(name));
        /// Items by name (the first field walks them), those `wanted` (the
        /// second) names.
        struct Named<G, F>(G, F, bool);
        impl<G, I, F, K, V> Serialize for Named<G, F>
        where
            G: Fn() -> I,
            I: Iterator<Item = (K, V)>,
            F: Fn(&str) -> bool,
            K: AsRef<str>,
            V: std::borrow::Borrow<Value>,
        {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(None)?;
                let items = (self.0)();
                for (k, v) in items.filter(|(k, _)| (self.1)(k.as_ref())) {
                    let k = k.as_ref();
                    match v.borrow() {
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
        /// Windows' aggregates by name (the first field walks them), those
        /// `wanted` names.
        struct Windows<G, F>(G, F);
        impl<G, I, F, K> Serialize for Windows<G, F>
        where
            G: Fn() -> I,
            I: Iterator<Item = (K, Bucket)>,
            F: Fn(&str) -> bool,
            K: AsRef<str>,
        {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(None)?;
                let items = (self.0)();
                for (name, b) in items.filter(|(k, _)| (self.1)(k.as_ref())) {
                    m.serialize_entry(name.as_ref(), &Window(&b))?;
                }
                m.end()
            }
        }
        /// A time as RFC 3339 text, formatted on the stack.
        struct Time(i64);
        impl Serialize for Time {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                profiledb_storage::time::with_timestamp(self.0, |t| s.serialize_str(t))
            }
        }
        let p = self.profile;
        let mut m = s.serialize_map(None)?;
        let floats = self.decimal_floats;
        m.serialize_entry("user", p.user())?;
        m.serialize_entry("as_of", &Time(p.as_of))?;
        m.serialize_entry("first_seen", &Time(p.first_seen))?;
        m.serialize_entry("last_seen", &Time(p.last_seen))?;
        m.serialize_entry("events", &p.events)?;
        m.serialize_entry("attributes", &Named(|| p.attributes(), wanted, floats))?;
        m.serialize_entry("features", &Named(|| p.features(), wanted, floats))?;
        m.serialize_entry("vectors", &Named(|| p.vectors(), wanted, floats))?;
        m.serialize_entry("windows", &Windows(|| p.windows(), wanted))?;
        if let Some(segments) = self.segments {
            m.serialize_entry("segments", segments)?;
        }
        m.end()
    }
}
