//! Schema changes: `CREATE` of every kind of item, and `DROP`, which refuses
//! to break a segment that reads the item.

use profiledb_storage::catalog::{
    ArithOp, Catalog, CmpOp, EVENT_TIME, EventChange, EventExpr, EventFilter, FieldDecl,
    FilterValue, KeyedBy, VectorRule,
};
use profiledb_storage::{DefKind, Definition, FeatureKind};

use super::*;
use crate::ast::{
    AlterSetting, BinaryOp, Expr, FeatureFunc, FieldSpec, Ident, Literal, ObjectKind, Statement,
    UnaryOp, VectorSpec,
};
use crate::bind::{Binder, segment_expr, unknown};
use crate::error::{At, Error, Result, Span};
use crate::output::Output;
use crate::source::DataSource;

pub(super) fn def_kind(kind: ObjectKind) -> DefKind {
    match kind {
        ObjectKind::Attribute => DefKind::Attribute,
        ObjectKind::Feature => DefKind::Feature,
        ObjectKind::Window => DefKind::Window,
        ObjectKind::Vector => DefKind::Vector,
        ObjectKind::Segment => DefKind::Segment,
    }
}

/// A declared field as the catalog keeps it.
fn field_decl(spec: &FieldSpec) -> FieldDecl {
    FieldDecl {
        name: spec.name.value.clone(),
        ty: spec.ty,
        not_null: spec.not_null,
        default: spec.default.as_ref().map(|(d, _)| match d {
            Literal::Null => FilterValue::Null,
            Literal::Bool(b) => FilterValue::Bool(*b),
            Literal::Int(i) => FilterValue::Int(*i),
            Literal::Float(x) => FilterValue::Float(*x),
            Literal::String(s) => FilterValue::String(s.clone()),
        }),
    }
}

/// `CREATE EVENT`, `ALTER EVENT … ADD FIELD` and `DROP EVENT`.
pub(super) fn change_events(source: &dyn DataSource, stmt: &Statement) -> Result<Output> {
    let (change, name, tag) = match stmt {
        Statement::CreateEvent { name, fields } => (
            EventChange::Declare {
                name: name.value.clone(),
                fields: fields.iter().map(field_decl).collect(),
            },
            name,
            "CREATE EVENT",
        ),
        Statement::AlterEventAddField { event, field } => (
            EventChange::AddField {
                event: event.value.clone(),
                field: field_decl(field),
            },
            event,
            "ALTER EVENT",
        ),
        Statement::DropEvent { name, .. } => (
            EventChange::Drop {
                name: name.value.clone(),
            },
            name,
            "DROP EVENT",
        ),
        _ => return Err(Error::invalid("not an event type change", None)),
    };
    // An ALTER or a DROP names a declared type.
    let catalog = &source.bindings().catalog;
    if !matches!(change, EventChange::Declare { .. }) && catalog.event(&name.value).is_none() {
        if let Statement::DropEvent {
            if_exists: true, ..
        } = stmt
        {
            return Ok(Output::done(format!(
                "DROP EVENT skipped: no event type '{}' is declared",
                name.value
            )));
        }
        return Err(unknown(
            "event type",
            name,
            catalog.events.iter().map(|e| e.name.as_str()),
        ));
    }
    source
        .change_events(change)
        .map_err(|e| field_at(e, stmt, name.span()))?;
    Ok(Output::done(tag))
}

/// A storage error about the statement `stmt`: one about a field it names
/// is located at that field, any other at `span`.
pub(super) fn field_at(e: profiledb_storage::Error, stmt: &Statement, span: Span) -> Error {
    match e {
        profiledb_storage::Error::InvalidField { field, reason } => {
            let at = field_span(stmt, &field).unwrap_or(span);
            Error::invalid(format!("field '{field}': {reason}"), Some(at))
        }
        other => storage_at(other, span),
    }
}

/// Where `stmt` names event field `field` first.
fn field_span(stmt: &Statement, field: &str) -> Option<Span> {
    let named = |i: &Ident| (i.value == field).then(|| i.span());
    let in_expr = |e: &Option<Expr>| e.as_ref().and_then(|e| column_span(e, field));
    match stmt {
        Statement::CreateOrReplace(inner) | Statement::CreateIfNotExists(inner) => {
            field_span(inner, field)
        }
        Statement::CreateAttribute { name, .. } => named(name),
        Statement::CreateFeature {
            field: f,
            arg,
            filter,
            by,
            ..
        } => f
            .as_ref()
            .and_then(named)
            .or_else(|| in_expr(arg))
            .or_else(|| by.as_ref().and_then(|k| named(&k.field)))
            .or_else(|| in_expr(filter)),
        Statement::CreateWindow {
            field: f,
            arg,
            filter,
            ..
        } => f
            .as_ref()
            .and_then(named)
            .or_else(|| in_expr(arg))
            .or_else(|| in_expr(filter)),
        Statement::CreateVector { spec, filter, .. } => match spec {
            VectorSpec::Ewma { field: f, .. } => named(f),
            VectorSpec::Sgd { item, label, .. } => named(item).or_else(|| named(label)),
        }
        .or_else(|| in_expr(filter)),
        Statement::CreateEvent { fields, .. } => fields.iter().find_map(|f| named(&f.name)),
        Statement::AlterEventAddField { field: f, .. } => named(&f.name),
        _ => None,
    }
}

/// Where expression `e` reads column `name` first.
fn column_span(e: &Expr, name: &str) -> Option<Span> {
    match e {
        Expr::Column(c) if c.value == name => Some(c.span()),
        Expr::Column(_) | Expr::InSegment(_) | Expr::Literal(..) => None,
        Expr::Array(items, _) => items.iter().find_map(|i| column_span(i, name)),
        Expr::Unary { expr, .. } | Expr::IsNull { expr, .. } => column_span(expr, name),
        Expr::Binary { left, right, .. }
        | Expr::Index {
            expr: left,
            key: right,
            ..
        } => column_span(left, name).or_else(|| column_span(right, name)),
        Expr::Between {
            expr, low, high, ..
        } => [expr, low, high]
            .into_iter()
            .find_map(|x| column_span(x, name)),
        Expr::InList { expr, list, .. } => {
            column_span(expr, name).or_else(|| list.iter().find_map(|i| column_span(i, name)))
        }
        Expr::Function { .. } | Expr::Case { .. } => {
            e.children().into_iter().find_map(|x| column_span(x, name))
        }
    }
}

/// Refuses a name some item already has, before any work is done for it.
pub(super) fn name_is_free(catalog: &Catalog, name: &Ident) -> Result<()> {
    match catalog.kind_of(&name.value) {
        Some(kind) => Err(Error::AlreadyExists {
            kind: kind.name(),
            name: name.value.clone(),
            at: At::span(name.span()),
        }),
        None => Ok(()),
    }
}

/// The storage definition a `CREATE` statement makes.
pub(super) fn definition(
    source: &dyn DataSource,
    stmt: &Statement,
    replace: bool,
) -> Result<Definition> {
    let def = item_definition(source, stmt, replace)?;
    let (also_on, filter, arg, keyed) = match stmt {
        Statement::CreateFeature {
            also_on,
            filter,
            arg,
            by,
            ..
        } => (
            also_on.as_slice(),
            filter.as_ref(),
            arg.as_ref(),
            by.as_ref().map(|k| KeyedBy {
                by: k.field.value.clone(),
                top: k.top,
            }),
        ),
        Statement::CreateWindow {
            also_on,
            filter,
            arg,
            ..
        } => (also_on.as_slice(), filter.as_ref(), arg.as_ref(), None),
        Statement::CreateVector {
            also_on, filter, ..
        } => (also_on.as_slice(), filter.as_ref(), None, None),
        _ => (&[][..], None, None, None),
    };
    let also_on: Vec<String> = also_on.iter().map(|e| e.value.clone()).collect();
    Ok(rescope(
        def,
        Scope {
            filter: filter.map(event_filter).transpose()?.as_ref(),
            also_on: &also_on,
            expr: arg.map(event_expr).transpose()?.as_ref(),
            keyed: keyed.as_ref(),
        },
    ))
}

/// The field name a definition with a computed argument carries until the
/// catalog replaces it with the expression.
const COMPUTED: &str = "value";

/// A computed argument as the catalog keeps it: numbers, event fields,
/// `+ - * /` and parentheses. Anything else is an error at it.
fn event_expr(e: &Expr) -> Result<EventExpr> {
    let unsupported = |e: &Expr| {
        Error::invalid(
            "a computed argument is arithmetic (+, -, *, /) over event fields and numbers",
            Some(e.span()),
        )
    };
    Ok(match e {
        Expr::Column(c) if ["user", "ts", "type"].contains(&c.value.as_str()) => {
            return Err(Error::invalid(
                format!("'{}' is an event key, not a field", c.value),
                Some(c.span()),
            ));
        }
        Expr::Column(c) => EventExpr::Field {
            field: c.value.clone(),
        },
        Expr::Literal(Literal::Int(i), _) => EventExpr::Const { value: *i as f64 },
        Expr::Literal(Literal::Float(x), _) => EventExpr::Const { value: *x },
        Expr::Unary {
            op: UnaryOp::Neg,
            expr,
            ..
        } => EventExpr::Neg {
            inner: Box::new(event_expr(expr)?),
        },
        Expr::Binary { left, op, right } => {
            let arith = match op {
                BinaryOp::Add => ArithOp::Add,
                BinaryOp::Sub => ArithOp::Sub,
                BinaryOp::Mul => ArithOp::Mul,
                BinaryOp::Div => ArithOp::Div,
                _ => return Err(unsupported(e)),
            };
            EventExpr::Arith {
                arith,
                left: Box::new(event_expr(left)?),
                right: Box::new(event_expr(right)?),
            }
        }
        _ => return Err(unsupported(e)),
    })
}

/// A filter in the query language as the catalog keeps it: comparisons of
/// event fields with constants, `IN`, `BETWEEN`, `IS NULL`, `AND`, `OR`,
/// `NOT`. Anything else is an error at it.
fn event_filter(e: &Expr) -> Result<EventFilter> {
    let unsupported = |e: &Expr| {
        Error::invalid(
            "an event filter compares event fields with constants (=, !=, <, <=, >, >=, IN, BETWEEN, IS NULL, AND, OR, NOT)",
            Some(e.span()),
        )
    };
    let constant = |e: &Expr| -> Result<FilterValue> {
        match e {
            Expr::Literal(l, _) => Ok(match l {
                Literal::Null => FilterValue::Null,
                Literal::Bool(b) => FilterValue::Bool(*b),
                Literal::Int(i) => FilterValue::Int(*i),
                Literal::Float(x) => FilterValue::Float(*x),
                Literal::String(s) => FilterValue::String(s.clone()),
            }),
            Expr::Unary {
                op: UnaryOp::Neg,
                expr,
                ..
            } => match &**expr {
                Expr::Literal(Literal::Int(i), _) => Ok(FilterValue::Int(-i)),
                Expr::Literal(Literal::Float(x), _) => Ok(FilterValue::Float(-x)),
                _ => Err(unsupported(e)),
            },
            _ => Err(unsupported(e)),
        }
    };
    let field = |e: &Expr| -> Result<String> {
        match e {
            Expr::Column(c) if ["user", "ts", "type"].contains(&c.value.as_str()) => {
                Err(Error::invalid(
                    format!("'{}' is an event key, not a field", c.value),
                    Some(c.span()),
                ))
            }
            Expr::Column(c) => Ok(c.value.clone()),
            _ => Err(unsupported(e)),
        }
    };
    let cmp = |op: BinaryOp| match op {
        BinaryOp::Eq => Some(CmpOp::Eq),
        BinaryOp::NotEq => Some(CmpOp::Ne),
        BinaryOp::Lt => Some(CmpOp::Lt),
        BinaryOp::LtEq => Some(CmpOp::Le),
        BinaryOp::Gt => Some(CmpOp::Gt),
        BinaryOp::GtEq => Some(CmpOp::Ge),
        _ => None,
    };
    let flipped = |op: CmpOp| match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        other => other,
    };
    Ok(match e {
        Expr::Binary { left, op, right } if matches!(op, BinaryOp::And | BinaryOp::Or) => {
            let (left, right) = (
                Box::new(event_filter(left)?),
                Box::new(event_filter(right)?),
            );
            if *op == BinaryOp::And {
                EventFilter::And { left, right }
            } else {
                EventFilter::Or { left, right }
            }
        }
        Expr::Binary { left, op, right } => {
            let op = cmp(*op).ok_or_else(|| unsupported(e))?;
            match (&**left, &**right) {
                (Expr::Column(_), r) => EventFilter::Cmp {
                    field: field(left)?,
                    cmp: op,
                    value: constant(r)?,
                },
                (l, Expr::Column(_)) => EventFilter::Cmp {
                    field: field(right)?,
                    cmp: flipped(op),
                    value: constant(l)?,
                },
                _ => return Err(unsupported(e)),
            }
        }
        Expr::Unary {
            op: UnaryOp::Not,
            expr,
            ..
        } => EventFilter::Not {
            inner: Box::new(event_filter(expr)?),
        },
        Expr::InList {
            expr,
            negated,
            list,
        } => EventFilter::In {
            field: field(expr)?,
            values: list.iter().map(constant).collect::<Result<_>>()?,
            negated: *negated,
        },
        Expr::IsNull { expr, negated } => EventFilter::IsNull {
            field: field(expr)?,
            negated: *negated,
        },
        Expr::Between {
            expr,
            negated,
            low,
            high,
        } => {
            let f = field(expr)?;
            let range = EventFilter::And {
                left: Box::new(EventFilter::Cmp {
                    field: f.clone(),
                    cmp: CmpOp::Ge,
                    value: constant(low)?,
                }),
                right: Box::new(EventFilter::Cmp {
                    field: f,
                    cmp: CmpOp::Le,
                    value: constant(high)?,
                }),
            };
            if *negated {
                EventFilter::Not {
                    inner: Box::new(range),
                }
            } else {
                range
            }
        }
        _ => return Err(unsupported(e)),
    })
}

/// [`definition`] without its filter.
fn item_definition(source: &dyn DataSource, stmt: &Statement, replace: bool) -> Result<Definition> {
    Ok(match stmt {
        Statement::CreateAttribute { name, ty, on } => Definition::Attribute {
            name: name.value.clone(),
            ty: *ty,
            event_type: on.as_ref().map(|e| e.value.clone()),
        },
        Statement::CreateFeature {
            name,
            event,
            also_on: _,
            filter: _,
            func,
            field,
            arg,
            half_life,
            prior,
            by: _,
        } => {
            let h = half_life.map_or(0, |h| h.ms);
            let kind = match func {
                FeatureFunc::Count => FeatureKind::Count,
                FeatureFunc::Sum => FeatureKind::Sum,
                FeatureFunc::Min | FeatureFunc::FirstSeen => FeatureKind::Min,
                FeatureFunc::Max | FeatureFunc::LastSeen => FeatureKind::Max,
                FeatureFunc::Last => FeatureKind::Last,
                FeatureFunc::CountDistinct => FeatureKind::CountDistinct,
                FeatureFunc::DecayedCount => FeatureKind::DecayedCount { half_life_ms: h },
                FeatureFunc::DecayedSum => FeatureKind::DecayedSum { half_life_ms: h },
                FeatureFunc::DecayedAvg => FeatureKind::DecayedAvg { half_life_ms: h },
                FeatureFunc::Beta => {
                    let (prior_a, prior_b) = prior.unwrap_or((1.0, 1.0));
                    FeatureKind::Beta {
                        half_life_ms: h,
                        prior_a,
                        prior_b,
                    }
                }
                FeatureFunc::Rate => {
                    let (prior_a, prior_b) = prior.unwrap_or((1.0, 1.0));
                    FeatureKind::Rate {
                        half_life_ms: h,
                        prior_a,
                        prior_b,
                    }
                }
            };
            // FIRST_SEEN() and LAST_SEEN() are MIN(ts) and MAX(ts); a
            // computed argument stands in for the field it replaces.
            let field = match func {
                FeatureFunc::FirstSeen | FeatureFunc::LastSeen => Some(EVENT_TIME.to_owned()),
                _ if arg.is_some() => Some(COMPUTED.to_owned()),
                _ => field.as_ref().map(|f| f.value.clone()),
            };
            Definition::Feature {
                name: name.value.clone(),
                event_type: event.value.clone(),
                field,
                kind,
            }
        }
        Statement::CreateWindow {
            name,
            event,
            also_on: _,
            filter: _,
            field,
            arg,
            bucket,
            retain,
        } => Definition::Window {
            name: name.value.clone(),
            event_type: event.value.clone(),
            field: match arg {
                Some(_) => Some(COMPUTED.to_owned()),
                None => field.as_ref().map(|f| f.value.clone()),
            },
            bucket_ms: bucket.ms,
            retain_ms: retain.ms,
        },
        Statement::CreateVector {
            name,
            event,
            also_on: _,
            filter: _,
            dim,
            spec,
        } => Definition::Vector {
            name: name.value.clone(),
            event_type: event.value.clone(),
            dim: *dim,
            rule: match spec {
                VectorSpec::Ewma { field, half_life } => VectorRule::Ewma {
                    field: field.value.clone(),
                    half_life_ms: half_life.ms,
                },
                VectorSpec::Sgd {
                    item,
                    label,
                    learning_rate,
                    l2,
                } => VectorRule::Sgd {
                    item_field: item.value.clone(),
                    label_field: label.value.clone(),
                    learning_rate: *learning_rate,
                    l2: *l2,
                },
            },
        },
        Statement::CreateSegment { name, predicate } => {
            let bindings = source.bindings();
            if !replace {
                name_is_free(&bindings.catalog, name)?;
            }
            Binder::new(&bindings.catalog, source.now())
                .predicate(predicate, "segment predicate")?;
            Definition::Segment {
                name: name.value.clone(),
                predicate: predicate.to_string(),
            }
        }
        _ => return Err(Error::invalid("not a definition", None)),
    })
}

/// Refuses a name no item of kind `dk` has, suggesting one that does.
fn exists(catalog: &Catalog, dk: DefKind, name: &Ident) -> Result<()> {
    if catalog.kind_of(&name.value) == Some(dk) {
        return Ok(());
    }
    let names: Vec<&str> = match dk {
        DefKind::Attribute => catalog.attributes.iter().map(|d| d.name.as_str()).collect(),
        DefKind::Feature => catalog.features.iter().map(|d| d.name.as_str()).collect(),
        DefKind::Window => catalog.windows.iter().map(|d| d.name.as_str()).collect(),
        DefKind::Vector => catalog.vectors.iter().map(|d| d.name.as_str()).collect(),
        DefKind::Segment => catalog.segments.iter().map(|d| d.name.as_str()).collect(),
        DefKind::SegmentGroup => catalog
            .segment_groups
            .iter()
            .map(|d| d.name.as_str())
            .collect(),
        DefKind::Index => catalog.indexes.iter().map(|d| d.name.as_str()).collect(),
    };
    Err(unknown(dk.name(), name, names))
}

/// `ALTER FEATURE|WINDOW|VECTOR name SET setting`: the item as it is to be,
/// and whether the change is in place (a prior, a retention: read-time
/// parameters) rather than a re-derivation from the history.
pub(super) fn altered(
    catalog: &Catalog,
    kind: ObjectKind,
    name: &Ident,
    setting: &AlterSetting,
) -> Result<(Definition, bool)> {
    let dk = def_kind(kind);
    exists(catalog, dk, name)?;
    let cannot = |what: &str| {
        Error::invalid(
            format!(
                "{} '{}' is {what}, which has no {}",
                dk.name(),
                name.value,
                setting_name(setting)
            ),
            Some(name.span()),
        )
    };
    if let Some(f) = catalog.feature(&name.value) {
        let kind = match setting {
            AlterSetting::HalfLife(h) => f.kind.with_half_life(h.ms),
            AlterSetting::Prior(a, b) => f.kind.with_prior(*a, *b),
            _ => None,
        }
        .ok_or_else(|| cannot(&format!("a {}()", f.kind.name())))?;
        let def = rescope(
            Definition::Feature {
                name: f.name.clone(),
                event_type: f.event_type.clone(),
                // A computed argument replaces the field the item names.
                field: f
                    .field
                    .clone()
                    .or_else(|| f.expr.as_ref().map(|_| COMPUTED.to_owned())),
                kind,
            },
            Scope {
                filter: f.filter.as_ref(),
                also_on: &f.also_on,
                expr: f.expr.as_ref(),
                keyed: f.keyed.as_ref(),
            },
        );
        return Ok((def, matches!(setting, AlterSetting::Prior(..))));
    }
    if let Some(w) = catalog.window(&name.value) {
        let AlterSetting::Retain(retain) = setting else {
            return Err(cannot("kept in buckets"));
        };
        let def = Definition::Window {
            name: w.name.clone(),
            event_type: w.event_type.clone(),
            field: w.field.clone(),
            bucket_ms: w.bucket_ms,
            retain_ms: retain.ms,
        };
        return Ok((def, true));
    }
    let v = catalog
        .vector(&name.value)
        .ok_or_else(|| unknown(dk.name(), name, []))?;
    let rule = match (&v.rule, setting) {
        (VectorRule::Ewma { field, .. }, AlterSetting::HalfLife(h)) => VectorRule::Ewma {
            field: field.clone(),
            half_life_ms: h.ms,
        },
        (
            VectorRule::Sgd {
                item_field,
                label_field,
                learning_rate,
                l2,
            },
            AlterSetting::LearningRate(_) | AlterSetting::L2(_),
        ) => VectorRule::Sgd {
            item_field: item_field.clone(),
            label_field: label_field.clone(),
            learning_rate: match setting {
                AlterSetting::LearningRate(x) => *x,
                _ => *learning_rate,
            },
            l2: match setting {
                AlterSetting::L2(x) => *x,
                _ => *l2,
            },
        },
        (VectorRule::Ewma { .. }, _) => return Err(cannot("an EWMA vector")),
        (VectorRule::Sgd { .. }, _) => return Err(cannot("learned by SGD")),
    };
    let def = rescope(
        Definition::Vector {
            name: v.name.clone(),
            event_type: v.event_type.clone(),
            dim: v.dim,
            rule,
        },
        Scope {
            filter: v.filter.as_ref(),
            also_on: &v.also_on,
            ..Scope::default()
        },
    );
    Ok((def, false))
}

/// What a setting is called in a message.
fn setting_name(setting: &AlterSetting) -> &'static str {
    match setting {
        AlterSetting::HalfLife(_) => "half-life",
        AlterSetting::Prior(..) => "prior",
        AlterSetting::Retain(_) => "retention",
        AlterSetting::LearningRate(_) => "learning rate",
        AlterSetting::L2(_) => "L2 penalty",
    }
}

/// How an item is scoped beyond its kind: the events it takes, the event
/// types it is bound to beside its own, the number it computes, and the key
/// it is kept per.
#[derive(Default)]
struct Scope<'a> {
    filter: Option<&'a EventFilter>,
    also_on: &'a [String],
    expr: Option<&'a EventExpr>,
    keyed: Option<&'a KeyedBy>,
}

/// `def` scoped as `scope` says (as the item it redefines was, for `ALTER`).
fn rescope(mut def: Definition, scope: Scope<'_>) -> Definition {
    if let Some(e) = scope.expr {
        def = Definition::Computed {
            item: Box::new(def),
            expr: e.clone(),
        };
    }
    if let Some(k) = scope.keyed {
        def = Definition::Keyed {
            item: Box::new(def),
            by: k.by.clone(),
            top: k.top,
        };
    }
    if !scope.also_on.is_empty() {
        def = Definition::AlsoOn {
            item: Box::new(def),
            event_types: scope.also_on.to_vec(),
        };
    }
    if let Some(f) = scope.filter {
        def = Definition::Filtered {
            item: Box::new(def),
            filter: f.clone(),
        };
    }
    def
}

/// Names an expression refers to: columns, windows and segments.
pub(super) fn referenced_names(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Column(c) | Expr::InSegment(c) => out.push(c.value.clone()),
        Expr::Literal(..) => {}
        Expr::Array(items, _) => items.iter().for_each(|i| referenced_names(i, out)),
        Expr::Unary { expr, .. } | Expr::IsNull { expr, .. } => referenced_names(expr, out),
        Expr::Binary { left, right, .. }
        | Expr::Index {
            expr: left,
            key: right,
            ..
        } => {
            referenced_names(left, out);
            referenced_names(right, out);
        }
        Expr::Between {
            expr, low, high, ..
        } => {
            for x in [expr, low, high] {
                referenced_names(x, out);
            }
        }
        Expr::InList { expr, list, .. } => {
            referenced_names(expr, out);
            list.iter().for_each(|i| referenced_names(i, out));
        }
        Expr::Function { .. } | Expr::Case { .. } => {
            for x in e.children() {
                referenced_names(x, out);
            }
        }
    }
}

pub(super) fn drop_item(source: &dyn DataSource, kind: ObjectKind, name: &Ident) -> Result<Output> {
    let bindings = source.bindings();
    let catalog = &bindings.catalog;
    let dk = def_kind(kind);
    exists(catalog, dk, name)?;
    // Refuse to break a segment that reads the item.
    for seg in &catalog.segments {
        if seg.name == name.value {
            continue;
        }
        let mut names = Vec::new();
        if let Ok(e) = segment_expr(seg) {
            referenced_names(&e, &mut names);
        }
        if names.contains(&name.value) {
            return Err(Error::invalid(
                format!(
                    "segment '{}' uses {} '{}'; drop the segment first",
                    seg.name,
                    dk.name(),
                    name.value
                ),
                Some(name.span()),
            ));
        }
    }
    source
        .drop_item(dk, &name.value)
        .map_err(|e| storage_at(e, name.span()))?;
    Ok(Output::done(format!("DROP {}", keyword(dk))))
}
