//! Declared event types: `CREATE EVENT view (item STRING, price FLOAT NOT
//! NULL, qty INT DEFAULT 1, item_vec VECTOR(32))`.
//!
//! A declaration is optional. An event of a declared type is checked against
//! it as it is planned: every field it carries must be declared and of the
//! declared type, a `NOT NULL` field must be there, and an absent field with a
//! `DEFAULT` is filled in (and kept so in the event history, so that a replay
//! reads what ingest read). Items bound to a declared type are checked when
//! they are created ([`Catalog::check_declared`]): a field they read must be
//! declared, of a type they can read, so a mistake is an error at creation
//! rather than every later event of that type being refused.

use serde::{Deserialize, Serialize};

use super::{Catalog, EventExpr, EventFilter, FilterValue, VectorRule};
use crate::error::{Error, Result};
use crate::event::{EVENT_ID, Event};
use crate::value::{AttrType, Value};

/// Most fields one event type declares.
pub const MAX_EVENT_FIELDS: usize = 1024;

/// Most event types a catalog declares.
pub const MAX_EVENT_TYPES: usize = 4096;

/// The most past declarations a catalog keeps ([`Catalog::past_events`]):
/// beyond, the oldest is forgotten, and a write accepted under it is
/// planned again as one of an undeclared type.
pub const MAX_PAST_EVENTS: usize = 1024;

/// The type of a declared field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// 64-bit signed integer.
    Int,
    /// 64-bit float (an integer is accepted as one).
    Float,
    /// UTF-8 string.
    String,
    /// Boolean.
    Bool,
    /// A set of string tags (a single string is accepted as one tag).
    Tags,
    /// An embedding vector of this dimension.
    Vector(u32),
}

impl FieldType {
    /// The scalar type, for every type but a vector.
    fn scalar(self) -> Option<AttrType> {
        Some(match self {
            FieldType::Int => AttrType::Int,
            FieldType::Float => AttrType::Float,
            FieldType::String => AttrType::String,
            FieldType::Bool => AttrType::Bool,
            FieldType::Tags => AttrType::Tags,
            FieldType::Vector(_) => return None,
        })
    }

    /// Whether it holds numbers (what a sum or an average reads).
    fn is_number(self) -> bool {
        matches!(self, FieldType::Int | FieldType::Float)
    }

    /// Checks that `v` (not null) is a value of this type.
    fn check(self, v: &Value) -> std::result::Result<(), String> {
        match self.scalar() {
            Some(ty) => v.coerce(ty).map(drop),
            None => v.to_vector(self.dim() as usize).map(drop),
        }
    }

    /// The dimension of a vector type; 0 for the others.
    fn dim(self) -> u32 {
        match self {
            FieldType::Vector(dim) => dim,
            _ => 0,
        }
    }
}

impl std::fmt::Display for FieldType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.scalar() {
            Some(ty) => write!(f, "{ty}"),
            None => write!(f, "VECTOR({})", self.dim()),
        }
    }
}

/// One declared field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDecl {
    /// Name.
    pub name: String,
    /// Type.
    pub ty: FieldType,
    /// Whether every event of the type must carry it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_null: bool,
    /// The value an event that lacks it takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<FilterValue>,
}

impl FieldDecl {
    /// The default as an event field's value.
    fn default_value(&self) -> Option<Value> {
        self.default.as_ref().map(|d| match d {
            FilterValue::Null => Value::Null,
            FilterValue::Bool(b) => Value::Bool(*b),
            FilterValue::Int(i) => Value::Int(*i),
            FilterValue::Float(x) => Value::Float(*x),
            FilterValue::String(s) => Value::String(s.clone()),
        })
    }

    /// Checks the declaration itself: its name, and a default of its type.
    fn check(&self, event: &str) -> Result<()> {
        super::check_field(&self.name).map_err(|e| Error::InvalidField {
            field: self.name.clone(),
            reason: match e {
                Error::InvalidArgument(m) => m,
                other => other.to_string(),
            },
        })?;
        if self.name == EVENT_ID {
            return Err(Error::InvalidField {
                field: self.name.clone(),
                reason: format!(
                    "'{EVENT_ID}' is the event's id, which every event type takes: it is not declared"
                ),
            });
        }
        if let Some(v) = self.default_value() {
            let bad = |reason: String| Error::InvalidField {
                field: self.name.clone(),
                reason,
            };
            if v.is_null() {
                return Err(bad("DEFAULT NULL is what an absent field is already".into()));
            }
            if matches!(self.ty, FieldType::Vector(_)) {
                return Err(bad("a VECTOR field takes no DEFAULT".into()));
            }
            self.ty
                .check(&v)
                .map_err(|r| bad(format!("DEFAULT of event type '{event}': {r}")))?;
        }
        Ok(())
    }
}

/// A declared event type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventDef {
    /// The event type.
    pub name: String,
    /// Its fields, in declaration order.
    pub fields: Vec<FieldDecl>,
    /// Catalog version that declared it (or last added a field).
    pub version: u64,
}

/// An event type's declaration as it was before a later catalog version
/// changed or dropped it: what writes accepted in between were admitted
/// under, kept so that a write planned again under its own version
/// ([`Catalog::as_of_version`]) is admitted as it was then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastEventDef {
    /// The declaration.
    pub def: EventDef,
    /// The catalog version that changed or dropped it.
    pub until: u64,
}

impl EventDef {
    /// Whether this declaration was in effect at catalog version `version`,
    /// when the version that ends it is `until`.
    pub(crate) fn in_effect(&self, version: u64, until: u64) -> bool {
        self.version <= version && version < until
    }

    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&FieldDecl> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Checks `ev`, of this type, against the declaration: every field it
    /// carries (but its id) is declared and of its type, and every `NOT
    /// NULL` field without a default is there. Returns the event with its
    /// absent defaulted fields filled in, when it lacks any.
    ///
    /// # Errors
    /// The field at fault and why.
    pub(crate) fn admit(&self, ev: &Event) -> std::result::Result<Option<Event>, (String, String)> {
        for (name, v) in &ev.fields {
            if name == EVENT_ID {
                continue;
            }
            let Some(decl) = self.field(name) else {
                return Err((
                    name.clone(),
                    format!(
                        "event type '{}' declares no such field (ALTER EVENT {} ADD FIELD {name} <type> declares it)",
                        self.name, self.name
                    ),
                ));
            };
            if !v.is_null() {
                decl.ty.check(v).map_err(|r| {
                    (
                        name.clone(),
                        format!("{r} (declared {} in event type '{}')", decl.ty, self.name),
                    )
                })?;
            }
        }
        let mut filled: Option<Event> = None;
        for decl in &self.fields {
            if ev.field(&decl.name).is_some_and(|v| !v.is_null()) {
                continue;
            }
            match decl.default_value() {
                Some(v) => filled
                    .get_or_insert_with(|| ev.clone())
                    .fields
                    .push((decl.name.clone(), v)),
                None if decl.not_null => {
                    return Err((
                        decl.name.clone(),
                        format!(
                            "missing, and event type '{}' declares it NOT NULL",
                            self.name
                        ),
                    ));
                }
                None => {}
            }
        }
        Ok(filled)
    }
}

/// A change to the declared event types.
#[derive(Debug, Clone, PartialEq)]
pub enum EventChange {
    /// `CREATE EVENT name (fields)`: [`Catalog::declare_event`].
    Declare {
        /// The event type.
        name: String,
        /// Its fields.
        fields: Vec<FieldDecl>,
    },
    /// `ALTER EVENT event ADD FIELD field`: [`Catalog::add_event_field`].
    AddField {
        /// The event type.
        event: String,
        /// The new field.
        field: FieldDecl,
    },
    /// `DROP EVENT name`: [`Catalog::drop_event`].
    Drop {
        /// The event type.
        name: String,
    },
}

/// How an item reads one field, for the check against a declaration.
#[derive(Debug, Clone, Copy)]
enum Read {
    /// A number: a sum, an average, a computed argument.
    Number,
    /// A 0/1 label: a beta, an sgd label.
    Label,
    /// Any value but a vector, hashed or used as a key.
    Scalar,
    /// A vector of this dimension.
    Vector(u32),
    /// An attribute of this type.
    Attribute(AttrType),
    /// Compared by a filter with constants of these kinds.
    Compared,
}

fn check_read(
    decl: &FieldDecl,
    read: Read,
    item: &str,
    event: &str,
) -> std::result::Result<(), String> {
    let ty = decl.ty;
    let ok = match read {
        Read::Number => ty.is_number(),
        Read::Label => matches!(ty, FieldType::Bool | FieldType::Int | FieldType::Float),
        Read::Scalar => !matches!(ty, FieldType::Vector(_)),
        Read::Vector(dim) => ty == FieldType::Vector(dim),
        Read::Attribute(a) => match (a, ty) {
            (AttrType::Float, FieldType::Int | FieldType::Float) => true,
            (AttrType::Tags, FieldType::String | FieldType::Tags) => true,
            (a, t) => t.scalar() == Some(a),
        },
        Read::Compared => true,
    };
    if ok {
        return Ok(());
    }
    let wants = match read {
        Read::Number => "a number (INT or FLOAT)".to_owned(),
        Read::Label => "a label (BOOL, or 0/1 as INT or FLOAT)".to_owned(),
        Read::Scalar => "a value that is not a vector".to_owned(),
        Read::Vector(dim) => format!("VECTOR({dim})"),
        Read::Attribute(a) => format!("a value of the attribute's type, {a}"),
        Read::Compared => String::new(),
    };
    Err(format!(
        "is {ty} in event type '{event}', and {item} reads {wants}"
    ))
}

impl Catalog {
    /// Applies `change`; the catalog is unchanged on error.
    ///
    /// # Errors
    /// As the change's method says.
    pub fn change_events(&mut self, change: EventChange) -> Result<()> {
        match change {
            EventChange::Declare { name, fields } => self.declare_event(&name, fields),
            EventChange::AddField { event, field } => self.add_event_field(&event, field),
            EventChange::Drop { name } => self.drop_event(&name),
        }
    }

    /// The declaration of event type `name`.
    pub fn event(&self, name: &str) -> Option<&EventDef> {
        self.events.iter().find(|e| e.name == name)
    }

    /// Declares an event type. Items already bound to it must read its
    /// fields as declared.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] for a declared type; [`Error::InvalidField`]
    /// for a bad field, or one an existing item reads otherwise;
    /// [`Error::InvalidArgument`] for a bad name.
    pub fn declare_event(&mut self, name: &str, fields: Vec<FieldDecl>) -> Result<()> {
        super::check_name("event type", name)?;
        if self.event(name).is_some() {
            return Err(Error::AlreadyExists {
                kind: "event type",
                name: name.to_owned(),
            });
        }
        if self.events.len() >= MAX_EVENT_TYPES {
            return Err(Error::invalid(format!(
                "the catalog declares at most {MAX_EVENT_TYPES} event types"
            )));
        }
        let mut next = self.clone();
        next.version += 1;
        next.events.push(EventDef {
            name: name.to_owned(),
            fields: Vec::new(),
            version: next.version,
        });
        for f in fields {
            next.add_declared_field(name, f)?;
        }
        next.check_bound_to(name)?;
        *self = next;
        Ok(())
    }

    /// Adds a field to a declared event type.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an undeclared type; [`Error::InvalidField`]
    /// for a field it declares already, or a bad one.
    pub fn add_event_field(&mut self, event: &str, field: FieldDecl) -> Result<()> {
        let mut next = self.clone();
        next.version += 1;
        let before = self.event(event).cloned();
        next.add_declared_field(event, field)?;
        next.check_bound_to(event)?;
        if let Some(def) = before {
            next.keep_past_event(def);
        }
        *self = next;
        Ok(())
    }

    /// Keeps `def`, which the current version ends, as a past declaration.
    fn keep_past_event(&mut self, def: EventDef) {
        if self.past_events.len() >= MAX_PAST_EVENTS {
            self.past_events.remove(0);
        }
        self.past_events.push(PastEventDef {
            def,
            until: self.version,
        });
    }

    fn add_declared_field(&mut self, event: &str, field: FieldDecl) -> Result<()> {
        field.check(event)?;
        let version = self.version;
        let def = self
            .events
            .iter_mut()
            .find(|e| e.name == event)
            .ok_or_else(|| Error::NotFound {
                kind: "event type",
                name: event.to_owned(),
            })?;
        if def.field(&field.name).is_some() {
            return Err(Error::InvalidField {
                reason: format!("event type '{event}' declares it already"),
                field: field.name,
            });
        }
        if def.fields.len() >= MAX_EVENT_FIELDS {
            return Err(Error::invalid(format!(
                "an event type declares at most {MAX_EVENT_FIELDS} fields"
            )));
        }
        def.fields.push(field);
        def.version = version;
        Ok(())
    }

    /// Drops the declaration of an event type: its events are accepted as
    /// any undeclared type's again. Items bound to it stay.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an undeclared type.
    pub fn drop_event(&mut self, name: &str) -> Result<()> {
        let pos = self
            .events
            .iter()
            .position(|e| e.name == name)
            .ok_or_else(|| Error::NotFound {
                kind: "event type",
                name: name.to_owned(),
            })?;
        let def = self.events.remove(pos);
        self.version += 1;
        self.keep_past_event(def);
        Ok(())
    }

    /// Checks every item bound to event type `event` against its declaration.
    fn check_bound_to(&self, event: &str) -> Result<()> {
        let ids: Vec<u32> = self
            .attributes
            .iter()
            .filter(|a| a.event_type.as_deref() == Some(event))
            .map(|a| a.id)
            .chain(
                self.features
                    .iter()
                    .filter(|f| f.event_types().any(|e| e == event))
                    .map(|f| f.id),
            )
            .chain(
                self.windows
                    .iter()
                    .filter(|w| w.event_types().any(|e| e == event))
                    .map(|w| w.id),
            )
            .chain(
                self.vectors
                    .iter()
                    .filter(|v| v.event_types().any(|e| e == event))
                    .map(|v| v.id),
            )
            .collect();
        ids.into_iter().try_for_each(|id| self.check_declared(id))
    }

    /// Checks the attribute, feature, window or vector `id` against the
    /// declarations of the event types it binds: every field it reads is
    /// declared there, of a type it can read. Undeclared types are not
    /// checked.
    ///
    /// # Errors
    /// [`Error::InvalidField`] naming the field and why.
    pub fn check_declared(&self, id: u32) -> Result<()> {
        let mut reads: Vec<(&str, Read)> = Vec::new();
        let (item, types): (String, Vec<&str>) =
            if let Some(a) = self.attributes.iter().find(|a| a.id == id) {
                reads.push((&a.name, Read::Attribute(a.ty)));
                (
                    format!("attribute '{}'", a.name),
                    a.event_type.iter().map(String::as_str).collect(),
                )
            } else if let Some(f) = self.features.iter().find(|f| f.id == id) {
                use super::FeatureKind as K;
                match (f.kind, f.field.as_deref()) {
                    (K::Rate { .. }, _) | (_, Some(super::EVENT_TIME)) | (_, None) => {}
                    (K::Beta { .. }, Some(field)) => reads.push((field, Read::Label)),
                    (K::CountDistinct, Some(field)) => reads.push((field, Read::Scalar)),
                    (_, Some(field)) => reads.push((field, Read::Number)),
                }
                read_expr(f.expr.as_ref(), &mut reads);
                read_filter(f.filter.as_ref(), &mut reads);
                if let Some(k) = &f.keyed {
                    reads.push((&k.by, Read::Scalar));
                }
                (
                    format!("feature '{}'", f.name),
                    f.event_types().map(String::as_str).collect(),
                )
            } else if let Some(w) = self.windows.iter().find(|w| w.id == id) {
                if let Some(field) = &w.field {
                    reads.push((field, Read::Number));
                }
                read_expr(w.expr.as_ref(), &mut reads);
                read_filter(w.filter.as_ref(), &mut reads);
                (
                    format!("window '{}'", w.name),
                    w.event_types().map(String::as_str).collect(),
                )
            } else if let Some(v) = self.vectors.iter().find(|v| v.id == id) {
                match &v.rule {
                    VectorRule::Ewma { field, .. } => reads.push((field, Read::Vector(v.dim))),
                    VectorRule::Sgd {
                        item_field,
                        label_field,
                        ..
                    } => {
                        reads.push((item_field, Read::Vector(v.dim)));
                        reads.push((label_field, Read::Label));
                    }
                }
                read_filter(v.filter.as_ref(), &mut reads);
                (
                    format!("vector '{}'", v.name),
                    v.event_types().map(String::as_str).collect(),
                )
            } else {
                return Ok(());
            };
        for event in types {
            let Some(decl) = self.event(event) else {
                continue;
            };
            for (field, read) in &reads {
                let Some(fd) = decl.field(field) else {
                    return Err(Error::InvalidField {
                        field: (*field).to_owned(),
                        reason: format!(
                            "event type '{event}' declares no such field ({item} reads it)"
                        ),
                    });
                };
                check_read(fd, *read, &item, event).map_err(|reason| Error::InvalidField {
                    field: (*field).to_owned(),
                    reason,
                })?;
            }
        }
        Ok(())
    }
}

fn read_expr<'a>(expr: Option<&'a EventExpr>, out: &mut Vec<(&'a str, Read)>) {
    if let Some(e) = expr {
        out.extend(e.fields().into_iter().map(|f| (f, Read::Number)));
    }
}

fn read_filter<'a>(filter: Option<&'a EventFilter>, out: &mut Vec<(&'a str, Read)>) {
    if let Some(f) = filter {
        out.extend(f.fields().into_iter().map(|f| (f, Read::Compared)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Definition, FeatureKind};

    fn decl(name: &str, ty: FieldType) -> FieldDecl {
        FieldDecl {
            name: name.into(),
            ty,
            not_null: false,
            default: None,
        }
    }

    fn view_catalog() -> Catalog {
        let mut c = Catalog::default();
        c.declare_event(
            "view",
            vec![
                decl("item", FieldType::String),
                FieldDecl {
                    not_null: true,
                    ..decl("price", FieldType::Float)
                },
                FieldDecl {
                    default: Some(FilterValue::Int(1)),
                    ..decl("qty", FieldType::Int)
                },
                decl("vec", FieldType::Vector(3)),
            ],
        )
        .expect("accepted");
        c
    }

    fn feature(name: &str, kind: FeatureKind, field: Option<&str>) -> Definition {
        Definition::Feature {
            name: name.into(),
            event_type: "view".into(),
            field: field.map(Into::into),
            kind,
        }
    }

    fn field_of(e: Error) -> String {
        match e {
            Error::InvalidField { field, .. } => field,
            other => panic!("expected a field error, got {other}"),
        }
    }

    #[test]
    fn items_read_declared_fields_as_declared() {
        let mut c = view_catalog();
        let before = c.clone();
        let last_item = c.define(feature("last_item", FeatureKind::Last, Some("item")));
        assert_eq!(field_of(last_item.expect_err("refused")), "item");
        let undeclared = c.define(feature("s", FeatureKind::Sum, Some("prce")));
        assert_eq!(field_of(undeclared.expect_err("refused")), "prce");
        let vec_sum = c.define(feature("v", FeatureKind::Sum, Some("vec")));
        assert_eq!(field_of(vec_sum.expect_err("refused")), "vec");
        let distinct_vec = c.define(feature("d", FeatureKind::CountDistinct, Some("vec")));
        assert_eq!(field_of(distinct_vec.expect_err("refused")), "vec");
        let filtered = c.define(Definition::Filtered {
            item: Box::new(feature("f", FeatureKind::Count, None)),
            filter: EventFilter::Cmp {
                field: "categry".into(),
                cmp: crate::catalog::CmpOp::Eq,
                value: FilterValue::String("tech".into()),
            },
        });
        assert_eq!(field_of(filtered.expect_err("refused")), "categry");
        assert_eq!(c, before, "nothing is created");
        c.define(feature("spend", FeatureKind::Sum, Some("price")))
            .expect("accepted");
        c.define(feature("qty_sum", FeatureKind::Sum, Some("qty")))
            .expect("accepted");
        c.define(feature("items", FeatureKind::CountDistinct, Some("item")))
            .expect("accepted");
        // Undeclared types are not checked.
        c.define(Definition::Feature {
            name: "x".into(),
            event_type: "click".into(),
            field: Some("anything".into()),
            kind: FeatureKind::Sum,
        })
        .expect("accepted");
    }

    #[test]
    fn a_declaration_must_fit_the_items_bound_already() {
        let mut c = Catalog::default();
        c.define(feature("spend", FeatureKind::Sum, Some("price")))
            .expect("accepted");
        let e = c.declare_event("view", vec![decl("price", FieldType::String)]);
        assert_eq!(field_of(e.expect_err("refused")), "price");
        assert!(c.event("view").is_none());
        c.declare_event("view", vec![decl("price", FieldType::Float)])
            .expect("accepted");
    }

    #[test]
    fn events_are_checked_and_filled() {
        let c = view_catalog();
        let def = c.event("view").expect("accepted");
        let ev = Event::new("u", "view", 1).with("price", 2.5);
        let filled = def.admit(&ev).expect("accepted").expect("qty is filled");
        assert_eq!(filled.field("qty"), Some(&Value::Int(1)));
        let with_qty = ev.clone().with("qty", 3i64);
        assert_eq!(def.admit(&with_qty).expect("accepted"), None);
        let missing = Event::new("u", "view", 1).with("qty", 2i64);
        assert_eq!(def.admit(&missing).expect_err("refused").0, "price");
        let unknown = ev.clone().with("colour", "red");
        assert_eq!(def.admit(&unknown).expect_err("refused").0, "colour");
        let wrong = ev.clone().with("item", 5i64);
        assert_eq!(def.admit(&wrong).expect_err("refused").0, "item");
        let short = ev.clone().with("vec", Value::Vector(vec![1.0, 2.0]));
        assert_eq!(def.admit(&short).expect_err("refused").0, "vec");
        let fractional = ev.with("qty", 1.5);
        assert_eq!(def.admit(&fractional).expect_err("refused").0, "qty");
    }

    #[test]
    fn bad_declarations_change_nothing() {
        let mut c = view_catalog();
        let before = c.clone();
        let twice = c.add_event_field("view", decl("item", FieldType::String));
        assert_eq!(field_of(twice.expect_err("refused")), "item");
        let bad_default = c.add_event_field(
            "view",
            FieldDecl {
                default: Some(FilterValue::String("x".into())),
                ..decl("n", FieldType::Int)
            },
        );
        assert_eq!(field_of(bad_default.expect_err("refused")), "n");
        assert!(matches!(
            c.add_event_field("nope", decl("n", FieldType::Int)),
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            c.declare_event("view", Vec::new()),
            Err(Error::AlreadyExists { .. })
        ));
        let key = c.declare_event("click", vec![decl("ts", FieldType::Int)]);
        assert!(key.is_err());
        assert_eq!(c, before);
        c.drop_event("view").expect("accepted");
        assert!(c.event("view").is_none());
    }

    #[test]
    fn a_past_version_declares_each_event_type_as_it_was_then() {
        // The catalog after each change, as it was: the reference.
        let mut c = view_catalog();
        let mut then = vec![c.clone()];
        let mut change = |c: &mut Catalog, f: &dyn Fn(&mut Catalog) -> Result<()>| {
            f(c).expect("accepted");
            then.push(c.clone());
        };
        change(&mut c, &|c| {
            c.add_event_field("view", decl("coupon", FieldType::String))
        });
        change(&mut c, &|c| {
            c.declare_event("click", vec![decl("ad", FieldType::String)])
        });
        change(&mut c, &|c| c.drop_event("view"));
        change(&mut c, &|c| {
            c.define(Definition::Feature {
                name: "n".into(),
                event_type: "view".into(),
                field: None,
                kind: FeatureKind::Count,
            })
            .map(|_| ())
        });
        change(&mut c, &|c| {
            c.declare_event(
                "view",
                vec![FieldDecl {
                    default: Some(FilterValue::Int(5)),
                    ..decl("qty", FieldType::Int)
                }],
            )
        });
        change(&mut c, &|c| {
            c.add_event_field("click", decl("slot", FieldType::Int))
        });
        change(&mut c, &|c| c.drop_event("click"));
        let sorted = |c: &Catalog| {
            let mut events = c.events.clone();
            events.sort_by(|a, b| a.name.cmp(&b.name));
            events
        };
        for past in &then {
            let at = c.as_of_version(past.version);
            assert_eq!(sorted(&at), sorted(past), "version {}", past.version);
            assert!(at.past_events.is_empty());
        }
        // Before the first declaration, nothing was declared.
        assert!(c.as_of_version(0).events.is_empty());
        assert_eq!(c.past_events.len(), 4);
    }

    #[test]
    fn past_declarations_are_bounded() {
        let mut c = Catalog::default();
        for i in 0..MAX_PAST_EVENTS + 10 {
            let name = format!("e{}", i % 3);
            c.declare_event(&name, Vec::new()).expect("accepted");
            c.drop_event(&name).expect("accepted");
        }
        assert_eq!(c.past_events.len(), MAX_PAST_EVENTS);
        // The newest are kept.
        let last = c.past_events.last().expect("kept");
        assert_eq!(last.until, c.version);
        assert_eq!(
            c.as_of_version(c.version - 1).event(&last.def.name),
            Some(&last.def)
        );
    }
}
