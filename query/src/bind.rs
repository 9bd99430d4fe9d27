//! Binding: names resolved against the catalog, types checked, and the parts of
//! each user's state an expression reads collected into [`RowNeeds`].
//!
//! A bound expression ([`BExpr`]) refers to definitions by id and to fetched
//! window ranges and sgd vectors by slot, so evaluating it per user does no name
//! lookups. `IN SEGMENT s` binds the segment's stored predicate in place.

use profiledb_storage::catalog::{
    Catalog, FeatureDef, SegmentDef, VectorDef, VectorRule, WindowDef,
};
use profiledb_storage::keys::bucket_start;
use std::sync::Arc;

use profiledb_storage::{AttrType, FeatureKind, Metric, RowNeeds, Value, WindowNeed};

use crate::ast::{BinaryOp, Expr, FunctionArg, Ident, Literal, UnaryOp};
use crate::error::{At, Error, Result, Span, closest};
use crate::functions::{self, Kind};
use crate::output::Type;
use crate::parser::{MAX_EXPR_DEPTH, parse_expr};

/// How deeply segments may refer to segments.
const SEGMENT_DEPTH: usize = 16;

/// A window aggregate over a trailing span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WindowFunc {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    Stddev,
}

/// An aggregate over the rows of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggFunc {
    CountStar,
    Count,
    /// `count(DISTINCT x)`.
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    /// Sample standard deviation (`stddev`, `stddev_samp`).
    Stddev,
    /// Population standard deviation.
    StddevPop,
    /// Sample variance (`variance`, `var_samp`).
    Variance,
    /// Population variance.
    VarPop,
    /// `percentile(x, p)`, interpolated as PostgreSQL's `percentile_cont`;
    /// `median(x)` is `percentile(x, 0.5)`.
    Percentile,
    Median,
}

/// A scalar function of numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MathFunc {
    Round,
    Floor,
    Ceil,
    Ln,
    Exp,
    Sqrt,
    Pow,
    Greatest,
    Least,
}

/// One aggregate computed per group.
#[derive(Debug, Clone)]
pub(crate) struct AggSpec {
    pub func: AggFunc,
    pub arg: Option<BExpr>,
    pub ty: Type,
    /// The fraction of a `percentile` (0.5 for `median`).
    pub fraction: f64,
}

/// A bound expression.
#[derive(Debug, Clone)]
pub(crate) enum BExpr {
    Const(Value),
    Id,
    Attr(u32),
    Feature(Box<FeatureDef>),
    /// The row's current vector of a definition (an sgd one is in
    /// [`RowNeeds::sgd`]).
    Vector(Box<VectorDef>),
    /// A window aggregate over `[as_of − span, as_of]`; slot in [`RowNeeds::windows`].
    Window {
        slot: usize,
        func: WindowFunc,
        span_ms: i64,
    },
    /// See [`crate::eval::zscore`].
    ZScore {
        slot: usize,
        current_ms: i64,
        spans: i64,
        counts: bool,
    },
    Not(Box<BExpr>),
    Neg(Box<BExpr>),
    And(Box<BExpr>, Box<BExpr>),
    Or(Box<BExpr>, Box<BExpr>),
    Cmp(BinaryOp, Box<BExpr>, Box<BExpr>),
    Arith(BinaryOp, Box<BExpr>, Box<BExpr>),
    Between {
        expr: Box<BExpr>,
        low: Box<BExpr>,
        high: Box<BExpr>,
        negated: bool,
    },
    InList {
        expr: Box<BExpr>,
        list: Vec<BExpr>,
        negated: bool,
    },
    IsNull {
        expr: Box<BExpr>,
        negated: bool,
    },
    Abs(Box<BExpr>),
    Coalesce(Vec<BExpr>),
    /// A keyed feature's value for a key: 0 for a key it does not hold
    /// (an integer for a keyed count).
    KeyValue {
        map: Box<BExpr>,
        key: Box<BExpr>,
        int: bool,
    },
    /// `LIKE` (or `ILIKE`, ignoring case).
    Like {
        expr: Box<BExpr>,
        pattern: Box<BExpr>,
        insensitive: bool,
    },
    /// `CASE`: the first `WHEN` that holds (or equals `operand`) gives its
    /// result, else `otherwise`, else NULL.
    Case {
        operand: Option<Box<BExpr>>,
        whens: Vec<(BExpr, BExpr)>,
        otherwise: Option<Box<BExpr>>,
    },
    /// A scalar function of numbers.
    Math(MathFunc, Vec<BExpr>),
    /// A keyed feature's `n` keys of the largest values, largest first.
    TopKeys {
        map: Box<BExpr>,
        n: usize,
    },
    /// `cosine`, `dot` or `l2_distance` of a user's vector against a target.
    Similarity {
        metric: Metric,
        /// The vector definition the row's vector comes from.
        def: u32,
        /// The row's vector: a [`BExpr::Vector`].
        vector: Box<BExpr>,
        target: Target,
    },
    /// The index of the centroid nearest to the row's vector (L2), ties to the
    /// lower index.
    NearestCentroid {
        vector: Box<BExpr>,
        centroids: Arc<Vec<Vec<f32>>>,
    },
    /// `hash(value, seed)`: XXH3 of the value's text form, seeded.
    Hash {
        arg: Box<BExpr>,
        seed: i64,
    },
    /// The i-th aggregate of the current group.
    Agg(usize),
    /// The i-th grouping key of the current group.
    Key(usize),
}

impl BExpr {
    /// Whether `f` holds for any expression directly inside this one,
    /// centroid members included. Allocates nothing: planning calls it on
    /// every node of every query.
    pub fn any_child(&self, mut f: impl FnMut(&BExpr) -> bool) -> bool {
        match self {
            BExpr::Not(x)
            | BExpr::Neg(x)
            | BExpr::Abs(x)
            | BExpr::TopKeys { map: x, .. }
            | BExpr::Hash { arg: x, .. } => f(x),
            BExpr::And(a, b)
            | BExpr::Or(a, b)
            | BExpr::Cmp(_, a, b)
            | BExpr::Arith(_, a, b)
            | BExpr::KeyValue { map: a, key: b, .. } => f(a) || f(b),
            BExpr::Between {
                expr, low, high, ..
            } => f(expr) || f(low) || f(high),
            BExpr::InList { expr, list, .. } => f(expr) || list.iter().any(f),
            BExpr::IsNull { expr, .. } => f(expr),
            BExpr::Coalesce(items) | BExpr::Math(_, items) => items.iter().any(f),
            BExpr::Like { expr, pattern, .. } => f(expr) || f(pattern),
            BExpr::Case {
                operand,
                whens,
                otherwise,
            } => {
                operand.as_deref().is_some_and(&mut f)
                    || whens.iter().any(|(w, t)| f(w) || f(t))
                    || otherwise.as_deref().is_some_and(&mut f)
            }
            BExpr::NearestCentroid { vector, .. } => f(vector),
            BExpr::Similarity { vector, target, .. } => {
                f(vector) || matches!(target, Target::Centroid { members, .. } if f(members))
            }
            BExpr::Const(_)
            | BExpr::Id
            | BExpr::Attr(_)
            | BExpr::Feature(_)
            | BExpr::Vector(_)
            | BExpr::Window { .. }
            | BExpr::ZScore { .. }
            | BExpr::Agg(_)
            | BExpr::Key(_) => false,
        }
    }

    /// The expressions directly inside this one, centroid members included.
    pub fn children_mut(&mut self) -> Vec<&mut BExpr> {
        match self {
            BExpr::Not(x)
            | BExpr::Neg(x)
            | BExpr::Abs(x)
            | BExpr::TopKeys { map: x, .. }
            | BExpr::Hash { arg: x, .. } => vec![x.as_mut()],
            BExpr::And(a, b)
            | BExpr::Or(a, b)
            | BExpr::Cmp(_, a, b)
            | BExpr::Arith(_, a, b)
            | BExpr::KeyValue { map: a, key: b, .. } => vec![a.as_mut(), b.as_mut()],
            BExpr::Between {
                expr, low, high, ..
            } => vec![expr.as_mut(), low.as_mut(), high.as_mut()],
            BExpr::InList { expr, list, .. } => {
                let mut v = vec![expr.as_mut()];
                v.extend(list.iter_mut());
                v
            }
            BExpr::IsNull { expr, .. } => vec![expr.as_mut()],
            BExpr::Coalesce(items) | BExpr::Math(_, items) => items.iter_mut().collect(),
            BExpr::Like { expr, pattern, .. } => vec![expr.as_mut(), pattern.as_mut()],
            BExpr::Case {
                operand,
                whens,
                otherwise,
            } => operand
                .iter_mut()
                .map(Box::as_mut)
                .chain(whens.iter_mut().flat_map(|(w, t)| [w, t]))
                .chain(otherwise.iter_mut().map(Box::as_mut))
                .collect(),
            BExpr::NearestCentroid { vector, .. } => vec![vector.as_mut()],
            BExpr::Similarity { vector, target, .. } => match target {
                Target::Centroid { members, .. } => vec![vector.as_mut(), members.as_mut()],
                _ => vec![vector.as_mut()],
            },
            BExpr::Const(_)
            | BExpr::Id
            | BExpr::Attr(_)
            | BExpr::Feature(_)
            | BExpr::Vector(_)
            | BExpr::Window { .. }
            | BExpr::ZScore { .. }
            | BExpr::Agg(_)
            | BExpr::Key(_) => Vec::new(),
        }
    }

    /// Whether evaluating the expression reads the vector index: a similarity
    /// to a stored user's vector or to a centroid of users.
    pub fn reads_vector_index(&self) -> bool {
        match self {
            BExpr::Similarity {
                target: Target::Centroid { .. },
                ..
            } => true,
            other => other.any_child(BExpr::reads_vector_index),
        }
    }

    /// Whether the expression reads nothing but the user id and attributes, so
    /// that it can be evaluated on the vector index's rows.
    pub fn reads_only_attributes(&self) -> bool {
        match self {
            BExpr::Const(_) | BExpr::Id | BExpr::Attr(_) => true,
            BExpr::Feature(_)
            | BExpr::Vector(_)
            | BExpr::Window { .. }
            | BExpr::ZScore { .. }
            | BExpr::Similarity { .. }
            | BExpr::NearestCentroid { .. }
            | BExpr::Agg(_)
            | BExpr::Key(_) => false,
            other => !other.any_child(|c| !c.reads_only_attributes()),
        }
    }
}

/// A vector that rows are compared with, and its norm, computed once.
#[derive(Debug, Clone)]
pub(crate) struct QueryVector {
    pub v: Vec<f32>,
    pub norm: f64,
}

impl Target {
    /// The target that compares with `v`.
    pub fn vector(v: Vec<f32>) -> Target {
        let norm = profiledb_storage::vector::kernels::norm(&v);
        Target::Vector(Arc::new(QueryVector { v, norm }))
    }
}

/// What a similarity compares against. Users and centroids are looked up once,
/// before the query runs (see `crate::similarity::resolve`).
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A vector: a literal, or a resolved user or centroid.
    Vector(Arc<QueryVector>),
    /// Nothing to compare with (a centroid of no members): every score is NULL.
    Null,
    /// The vector of user `id` under definition `def`.
    User { id: String, def: u32, span: Span },
    /// The mean of the vectors under `def` of the users `members` accepts.
    Centroid { def: u32, members: Box<BExpr> },
}

/// Grouping context: the texts of the GROUP BY keys, and the aggregates found.
#[derive(Debug, Default)]
pub(crate) struct Grouping {
    pub keys: Vec<String>,
    pub aggs: Vec<AggSpec>,
}

/// Binds one child expression, in row or group context.
type BindChild<'b, 'a> = dyn FnMut(&mut Binder<'a>, &Expr) -> Result<(BExpr, Type)> + 'b;

/// Binds expressions of one statement.
pub(crate) struct Binder<'a> {
    pub catalog: &'a Catalog,
    pub as_of: i64,
    pub needs: RowNeeds,
    segments: Vec<String>,
    /// How deep [`Binder::bind`] is: the height of the bound tree so far, with
    /// segments inlined, kept within [`MAX_EXPR_DEPTH`].
    depth: usize,
}

/// The ms of a string literal that spells a duration (`'30d'`).
fn duration_literal(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(Literal::String(s), _) => profiledb_storage::time::parse_duration(s).ok(),
        _ => None,
    }
}

fn mismatch(context: &str, expected: impl ToString, found: Type, span: Span) -> Error {
    Error::TypeMismatch {
        context: context.to_owned(),
        expected: expected.to_string(),
        found: found.to_string(),
        at: At::span(span),
    }
}

/// The type of an attribute.
pub(crate) fn attr_type(ty: AttrType) -> Type {
    match ty {
        AttrType::Int => Type::Int,
        AttrType::Float => Type::Float,
        AttrType::String => Type::String,
        AttrType::Bool => Type::Bool,
        AttrType::Tags => Type::Tags,
    }
}

/// The type a feature reads as.
pub(crate) fn feature_type(def: &FeatureDef) -> Type {
    if def.reads_event_time() {
        return Type::Int;
    }
    if def.keyed.is_some() {
        return Type::Map;
    }
    match def.kind {
        FeatureKind::Count | FeatureKind::CountDistinct => Type::Int,
        _ => Type::Float,
    }
}

/// A literal's value and type.
pub(crate) fn literal(l: &Literal) -> (Value, Type) {
    match l {
        Literal::Null => (Value::Null, Type::Null),
        Literal::Bool(b) => (Value::Bool(*b), Type::Bool),
        Literal::Int(i) => (Value::Int(*i), Type::Int),
        Literal::Float(x) => (Value::Float(*x), Type::Float),
        Literal::String(s) => (Value::String(s.clone()), Type::String),
    }
}

fn comparable(a: Type, b: Type) -> bool {
    a == Type::Null
        || b == Type::Null
        || (a.is_numeric() && b.is_numeric())
        || (a == b && matches!(a, Type::String | Type::Bool))
}

impl<'a> Binder<'a> {
    pub fn new(catalog: &'a Catalog, as_of: i64) -> Binder<'a> {
        Binder {
            catalog,
            as_of,
            needs: RowNeeds {
                items: Some(Vec::new()),
                ..RowNeeds::default()
            },
            segments: Vec::new(),
            depth: 0,
        }
    }

    /// Binds `e` and checks it is a predicate (bool or NULL).
    pub fn predicate(&mut self, e: &Expr, context: &str) -> Result<BExpr> {
        let (b, ty) = self.expr(e, None)?;
        if !matches!(ty, Type::Bool | Type::Null) {
            return Err(mismatch(context, Type::Bool, ty, e.span()));
        }
        Ok(b)
    }

    /// Binds a row-level expression, or with `group`, an expression over groups.
    pub fn expr(&mut self, e: &Expr, group: Option<&mut Grouping>) -> Result<(BExpr, Type)> {
        match group {
            None => self.row_expr(e),
            Some(g) => self.group_expr(e, g),
        }
    }

    fn row_expr(&mut self, e: &Expr) -> Result<(BExpr, Type)> {
        self.bind(e, &mut |b: &mut Binder<'_>, e| b.row_expr(e))
    }

    /// In a grouped query: a GROUP BY key, an aggregate, or an expression of those.
    fn group_expr(&mut self, e: &Expr, g: &mut Grouping) -> Result<(BExpr, Type)> {
        let key = if g.keys.is_empty() {
            None
        } else {
            let text = e.to_string();
            g.keys.iter().position(|k| *k == text)
        };
        if let Some(i) = key {
            // The key's type is its row type; binding again costs nothing at run time.
            let (_, ty) = self.row_expr(e)?;
            return Ok((BExpr::Key(i), ty));
        }
        if let Expr::Function { name, args } = e
            && let Some(func) = agg_func(&name.value, args)
        {
            let lower = name.value.to_ascii_lowercase();
            let mut fraction = 0.5;
            if func == AggFunc::Percentile {
                // percentile(x, p): p a constant fraction.
                let p = match args.get(1) {
                    Some(FunctionArg::Expr(Expr::Literal(Literal::Int(i), _))) => *i as f64,
                    Some(FunctionArg::Expr(Expr::Literal(Literal::Float(x), _))) => *x,
                    _ => f64::NAN,
                };
                if args.len() != 2 || !(0.0..=1.0).contains(&p) {
                    return Err(Error::invalid(
                        "percentile takes 2 arguments: percentile(expression, fraction), the fraction a number from 0 to 1",
                        Some(e.span()),
                    ));
                }
                fraction = p;
            } else if args.len() != 1 {
                let lower = name.value.to_ascii_lowercase();
                let sig = if func == AggFunc::Count || func == AggFunc::CountStar {
                    "count(*) or count(expression)".to_owned()
                } else {
                    format!("{lower}(expression)")
                };
                return Err(Error::invalid(
                    format!("{lower} takes 1 argument: {sig}"),
                    Some(e.span()),
                ));
            }
            let (arg, ty) = match (func, args.first()) {
                (AggFunc::CountStar, _) => (None, Type::Int),
                (AggFunc::CountDistinct, Some(FunctionArg::Distinct(a)))
                | (_, Some(FunctionArg::Expr(a))) => {
                    let (b, ty) = self.row_expr(a)?;
                    (Some(b), ty)
                }
                (_, Some(FunctionArg::Distinct(a))) => {
                    return Err(Error::invalid(
                        format!("DISTINCT goes only in count(DISTINCT …), not in {lower}()"),
                        Some(a.span()),
                    ));
                }
                _ => {
                    return Err(Error::invalid(
                        format!("{} needs an argument", name.value),
                        Some(e.span()),
                    ));
                }
            };
            // The argument's type is checked before the result's replaces it.
            let numeric = matches!(
                func,
                AggFunc::Sum
                    | AggFunc::Avg
                    | AggFunc::Stddev
                    | AggFunc::StddevPop
                    | AggFunc::Variance
                    | AggFunc::VarPop
                    | AggFunc::Percentile
                    | AggFunc::Median
            );
            if func == AggFunc::CountDistinct && matches!(ty, Type::Vector | Type::Map) {
                return Err(mismatch(
                    "count(DISTINCT …)",
                    "a number, string, bool or tags",
                    ty,
                    e.span(),
                ));
            }
            // `sum` and `avg` of vectors add them up element-wise.
            let vector_sum = matches!(func, AggFunc::Sum | AggFunc::Avg) && ty == Type::Vector;
            if numeric && !ty.is_numeric() && ty != Type::Null && !vector_sum {
                return Err(mismatch(
                    &format!("{}()", name.value),
                    "a number",
                    ty,
                    e.span(),
                ));
            }
            if matches!(func, AggFunc::Min | AggFunc::Max)
                && matches!(ty, Type::Tags | Type::Vector)
            {
                return Err(mismatch(
                    &format!("{}()", name.value),
                    "a number, string or bool",
                    ty,
                    e.span(),
                ));
            }
            let ty = match func {
                AggFunc::CountStar | AggFunc::Count | AggFunc::CountDistinct => Type::Int,
                AggFunc::Sum | AggFunc::Min | AggFunc::Max => ty,
                AggFunc::Avg if vector_sum => Type::Vector,
                _ => Type::Float,
            };
            g.aggs.push(AggSpec {
                func,
                arg,
                ty,
                fraction,
            });
            return Ok((BExpr::Agg(g.aggs.len() - 1), ty));
        }
        if let Expr::Column(c) = e {
            return Err(Error::invalid(
                format!(
                    "column '{}' must appear in GROUP BY or inside an aggregate such as count(), sum() or avg()",
                    c.value
                ),
                Some(c.span()),
            ));
        }
        self.bind(e, &mut |b: &mut Binder<'_>, e| b.group_expr(e, g))
    }

    /// Binds the structure of `e`, binding children with `child`. Each level
    /// counts towards [`MAX_EXPR_DEPTH`]: the parser bounds one expression, and
    /// this bounds what segments inlined into one another add up to, so that the
    /// passes over the bound tree stay within the stack.
    ///
    /// Binding's frames are large in unoptimised builds (about 12 KiB a level), so
    /// it also grows its stack on the heap when it runs low (`recursive`, the
    /// same guard sqlparser-rs puts on its recursive passes).
    #[recursive::recursive]
    fn bind(&mut self, e: &Expr, child: &mut BindChild<'_, 'a>) -> Result<(BExpr, Type)> {
        if self.depth >= MAX_EXPR_DEPTH {
            return Err(Error::invalid(
                format!(
                    "expression too deep: more than {MAX_EXPR_DEPTH} levels with the segments it names inlined"
                ),
                Some(e.span()),
            ));
        }
        self.depth += 1;
        let bound = self.bind_node(e, child);
        self.depth -= 1;
        bound
    }

    fn bind_node(&mut self, e: &Expr, child: &mut BindChild<'_, 'a>) -> Result<(BExpr, Type)> {
        // Spans are computed where an error needs one: `Expr::span` walks the
        // tree, and taking it at every node made binding a chain quadratic.
        Ok(match e {
            Expr::Literal(l, _) => {
                let (v, ty) = literal(l);
                (BExpr::Const(v), ty)
            }
            Expr::Column(c) => self.column(c)?,
            Expr::Array(items, _) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(const_number(item)? as f32);
                }
                (BExpr::Const(Value::Vector(out)), Type::Vector)
            }
            Expr::Unary {
                op: UnaryOp::Not,
                expr,
                ..
            } => {
                let (b, ty) = child(self, expr)?;
                if !matches!(ty, Type::Bool | Type::Null) {
                    return Err(mismatch("NOT", Type::Bool, ty, expr.span()));
                }
                (BExpr::Not(Box::new(b)), Type::Bool)
            }
            Expr::Unary {
                op: UnaryOp::Neg,
                expr,
                ..
            } => {
                let (b, ty) = child(self, expr)?;
                if !ty.is_numeric() {
                    return Err(mismatch("unary minus", "a number", ty, expr.span()));
                }
                (BExpr::Neg(Box::new(b)), ty)
            }
            Expr::Binary { left, op, right } => {
                let (mut l, mut lt) = child(self, left)?;
                let (mut r, mut rt) = child(self, right)?;
                // A duration beside a number is that many ms: `now() -
                // last_seen > '30d'`. (A number against any other string is
                // a type error, as before.)
                if !matches!(op, BinaryOp::And | BinaryOp::Or) {
                    if matches!(lt, Type::Int | Type::Float)
                        && let Some(ms) = duration_literal(right)
                    {
                        (r, rt) = (BExpr::Const(Value::Int(ms)), Type::Int);
                    }
                    if matches!(rt, Type::Int | Type::Float)
                        && let Some(ms) = duration_literal(left)
                    {
                        (l, lt) = (BExpr::Const(Value::Int(ms)), Type::Int);
                    }
                }
                let (l, r) = (Box::new(l), Box::new(r));
                match op {
                    BinaryOp::And | BinaryOp::Or => {
                        for (ty, side) in [(lt, left), (rt, right)] {
                            if !matches!(ty, Type::Bool | Type::Null) {
                                return Err(mismatch(op.symbol(), Type::Bool, ty, side.span()));
                            }
                        }
                        let b = if *op == BinaryOp::And {
                            BExpr::And(l, r)
                        } else {
                            BExpr::Or(l, r)
                        };
                        (b, Type::Bool)
                    }
                    BinaryOp::Like | BinaryOp::ILike => {
                        for (ty, side) in [(lt, left), (rt, right)] {
                            if !matches!(ty, Type::String | Type::Null) {
                                return Err(mismatch(op.symbol(), Type::String, ty, side.span()));
                            }
                        }
                        (
                            BExpr::Like {
                                expr: l,
                                pattern: r,
                                insensitive: *op == BinaryOp::ILike,
                            },
                            Type::Bool,
                        )
                    }
                    op if op.is_comparison() => {
                        if !comparable(lt, rt) {
                            return Err(mismatch(
                                &format!("comparison '{}'", op.symbol()),
                                lt,
                                rt,
                                right.span(),
                            ));
                        }
                        (BExpr::Cmp(*op, l, r), Type::Bool)
                    }
                    op => {
                        for (ty, side) in [(lt, left), (rt, right)] {
                            if !ty.is_numeric() {
                                return Err(mismatch(
                                    &format!("arithmetic '{}'", op.symbol()),
                                    "a number",
                                    ty,
                                    side.span(),
                                ));
                            }
                        }
                        let ty = if *op != BinaryOp::Div && lt == Type::Int && rt == Type::Int {
                            Type::Int
                        } else {
                            Type::Float
                        };
                        (BExpr::Arith(*op, l, r), ty)
                    }
                }
            }
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let (x, xt) = child(self, expr)?;
                let (lo, lot) = child(self, low)?;
                let (hi, hit) = child(self, high)?;
                for (ty, side) in [(lot, low), (hit, high)] {
                    if !comparable(xt, ty) {
                        return Err(mismatch("BETWEEN", xt, ty, side.span()));
                    }
                }
                (
                    BExpr::Between {
                        expr: Box::new(x),
                        low: Box::new(lo),
                        high: Box::new(hi),
                        negated: *negated,
                    },
                    Type::Bool,
                )
            }
            Expr::InList {
                expr,
                negated,
                list,
            } => {
                let (x, xt) = child(self, expr)?;
                let mut out = Vec::with_capacity(list.len());
                for item in list {
                    let (b, ty) = child(self, item)?;
                    if !comparable(xt, ty) {
                        return Err(mismatch("IN", xt, ty, item.span()));
                    }
                    out.push(b);
                }
                (
                    BExpr::InList {
                        expr: Box::new(x),
                        list: out,
                        negated: *negated,
                    },
                    Type::Bool,
                )
            }
            Expr::IsNull { expr, negated } => {
                let (x, _) = child(self, expr)?;
                (
                    BExpr::IsNull {
                        expr: Box::new(x),
                        negated: *negated,
                    },
                    Type::Bool,
                )
            }
            Expr::InSegment(name) => (self.segment(name)?, Type::Bool),
            Expr::Case {
                operand,
                whens,
                otherwise,
                ..
            } => {
                let operand = match operand {
                    Some(o) => Some(child(self, o)?),
                    None => None,
                };
                let mut ty = Type::Null;
                let mut unify = |t: Type, e: &Expr| -> Result<()> {
                    if ty == Type::Null || (t == Type::Float && ty == Type::Int) {
                        ty = t;
                    } else if t != Type::Null && t != ty && !(t.is_numeric() && ty.is_numeric()) {
                        return Err(mismatch("CASE results", ty, t, e.span()));
                    }
                    Ok(())
                };
                let mut bound = Vec::with_capacity(whens.len());
                for (w, t) in whens {
                    let (bw, wt) = child(self, w)?;
                    match &operand {
                        Some((_, ot)) if !comparable(*ot, wt) => {
                            return Err(mismatch("CASE … WHEN", *ot, wt, w.span()));
                        }
                        None if !matches!(wt, Type::Bool | Type::Null) => {
                            return Err(mismatch("WHEN", Type::Bool, wt, w.span()));
                        }
                        _ => {}
                    }
                    let (bt, tt) = child(self, t)?;
                    unify(tt, t)?;
                    bound.push((bw, bt));
                }
                let otherwise = match otherwise {
                    Some(o) => {
                        let (bo, ot) = child(self, o)?;
                        unify(ot, o)?;
                        Some(Box::new(bo))
                    }
                    None => None,
                };
                (
                    BExpr::Case {
                        operand: operand.map(|(b, _)| Box::new(b)),
                        whens: bound,
                        otherwise,
                    },
                    ty,
                )
            }
            Expr::Index { expr, key, .. } => {
                let (map, int) = self.keyed_arg(expr, child)?;
                let (k, kty) = child(self, key)?;
                if !matches!(kty, Type::String | Type::Null) {
                    return Err(mismatch("a key", Type::String, kty, key.span()));
                }
                let ty = if int { Type::Int } else { Type::Float };
                (
                    BExpr::KeyValue {
                        map: Box::new(map),
                        key: Box::new(k),
                        int,
                    },
                    ty,
                )
            }
            Expr::Function { name, args } => self.function(name, args, e.span(), child)?,
        })
    }

    fn column(&mut self, c: &Ident) -> Result<(BExpr, Type)> {
        let name = c.value.as_str();
        let cat = self.catalog;
        if name == "id" {
            return Ok((BExpr::Id, Type::String));
        }
        if let Some(a) = cat.attribute(name) {
            self.needs.attributes = true;
            return Ok((BExpr::Attr(a.id), attr_type(a.ty)));
        }
        if let Some(f) = cat.feature(name) {
            self.item(f.id);
            return Ok((BExpr::Feature(Box::new(f.clone())), feature_type(f)));
        }
        if let Some(v) = cat.vector(name) {
            return Ok(match v.rule {
                VectorRule::Ewma { .. } => {
                    self.item(v.id);
                    (BExpr::Vector(Box::new(v.clone())), Type::Vector)
                }
                VectorRule::Sgd { .. } => {
                    if !self.needs.sgd.contains(&v.id) {
                        self.needs.sgd.push(v.id);
                    }
                    (BExpr::Vector(Box::new(v.clone())), Type::Vector)
                }
            });
        }
        if cat.window(name).is_some() {
            return Err(Error::invalid(
                format!(
                    "'{name}' is a window, not a column: read it with window_count({name}, '1d'), window_sum, window_avg, window_min, window_max or window_stddev"
                ),
                Some(c.span()),
            ));
        }
        if cat.segment(name).is_some() {
            return Err(Error::invalid(
                format!(
                    "'{name}' is a segment, not a column: test membership with IN SEGMENT {name}"
                ),
                Some(c.span()),
            ));
        }
        Err(unknown("column", c, column_names(cat)))
    }

    /// Notes that rows must hold features-record item `id`.
    fn item(&mut self, id: u32) {
        if let Some(items) = &mut self.needs.items
            && !items.contains(&id)
        {
            items.push(id);
        }
    }

    fn segment(&mut self, name: &Ident) -> Result<BExpr> {
        let cat = self.catalog;
        let Some(seg) = cat.segment(&name.value) else {
            return Err(unknown(
                "segment",
                name,
                cat.segments.iter().map(|s| s.name.as_str()),
            ));
        };
        if self.segments.contains(&seg.name) {
            return Err(Error::invalid(
                format!(
                    "segment '{}' refers to itself through {}",
                    seg.name,
                    self.segments.join(" → ")
                ),
                Some(name.span()),
            ));
        }
        if self.segments.len() >= SEGMENT_DEPTH {
            return Err(Error::invalid(
                format!(
                    "segments nest more than {SEGMENT_DEPTH} deep: {} → {}",
                    self.segments.join(" → "),
                    seg.name
                ),
                Some(name.span()),
            ));
        }
        self.segments.push(seg.name.clone());
        let expr = segment_expr(seg);
        let bound = expr
            .clone()
            .map_err(Error::from)
            .and_then(|e| self.predicate(&e, "segment predicate"));
        self.segments.pop();
        bound.map_err(|e| {
            // The inner error's span indexes the segment's text, not this statement.
            let inner = match e {
                Error::Parse(p) => p.message,
                other => other.to_string(),
            };
            let text = expr.map_or_else(|_| seg.predicate.clone(), |e| e.to_string());
            Error::invalid(
                format!("segment '{}' ({text}) no longer binds: {inner}", seg.name),
                Some(name.span()),
            )
        })
    }

    fn function(
        &mut self,
        name: &Ident,
        args: &[FunctionArg],
        span: Span,
        child: &mut BindChild<'_, 'a>,
    ) -> Result<(BExpr, Type)> {
        let lower = name.value.to_ascii_lowercase();
        let exprs: Vec<&Expr> = args
            .iter()
            .filter_map(|a| match a {
                FunctionArg::Expr(e) => Some(e),
                FunctionArg::Star | FunctionArg::Distinct(_) => None,
            })
            .collect();
        if exprs.len() != args.len() {
            return Err(Error::invalid(
                "'*' and DISTINCT are only arguments of count(*) and count(DISTINCT …)",
                Some(span),
            ));
        }
        let func = functions::lookup(&lower)
            .ok_or_else(|| unknown("function", name, functions::names()))?;
        if matches!(func.kind, Kind::Aggregate(_)) {
            return Err(Error::invalid(
                format!(
                    "aggregate {lower}() is only allowed in the select list or ORDER BY of a query over all users"
                ),
                Some(span),
            ));
        }
        if func.kind == Kind::Centroid {
            return Err(Error::invalid(
                "centroid(vector, segment) is only a target of cosine, dot or l2_distance",
                Some(span),
            ));
        }
        if let Some(message) = func.arity_error(exprs.len()) {
            return Err(Error::invalid(message, Some(span)));
        }
        match func.kind {
            Kind::Window(func) => {
                let w = self.window_arg(exprs[0])?;
                let span_ms = duration_arg(exprs[1])?;
                let from = self.as_of.saturating_sub(span_ms);
                let slot = self.window_slot(w, from);
                let ty = if func == WindowFunc::Count {
                    Type::Int
                } else {
                    Type::Float
                };
                Ok((
                    BExpr::Window {
                        slot,
                        func,
                        span_ms,
                    },
                    ty,
                ))
            }
            Kind::Similarity(metric) => {
                let (def, dim, vector) = self.vector_arg(exprs[0])?;
                let target = self.target(exprs[1], def, dim)?;
                Ok((
                    BExpr::Similarity {
                        metric,
                        def,
                        vector: Box::new(vector),
                        target,
                    },
                    Type::Float,
                ))
            }
            Kind::NearestCluster => {
                let cat = self.catalog;
                let Expr::Column(g) = exprs[0] else {
                    return Err(Error::invalid(
                        "expected a segment group name",
                        Some(exprs[0].span()),
                    ));
                };
                let group = cat.segment_group(&g.value).ok_or_else(|| {
                    unknown(
                        "segment group",
                        g,
                        cat.segment_groups.iter().map(|g| g.name.as_str()),
                    )
                })?;
                let (_, _, vector) = self.vector_arg(&Expr::Column(Ident {
                    value: group.vector.clone(),
                    loc: g.loc,
                }))?;
                Ok((
                    BExpr::NearestCentroid {
                        vector: Box::new(vector),
                        centroids: Arc::new(group.centroids.clone()),
                    },
                    Type::Int,
                ))
            }
            Kind::NearestCentroid => {
                let (_, dim, vector) = self.vector_arg(exprs[0])?;
                let Expr::Array(items, _) = exprs[1] else {
                    return Err(Error::invalid(
                        "expected the centroids as an array of vectors: [[0.1, …], [0.2, …]]",
                        Some(exprs[1].span()),
                    ));
                };
                if items.is_empty() {
                    return Err(Error::invalid(
                        "nearest_centroid needs at least one centroid",
                        Some(exprs[1].span()),
                    ));
                }
                let centroids = items
                    .iter()
                    .map(|c| match c {
                        Expr::Array(xs, _) if xs.len() == dim => xs
                            .iter()
                            .map(|x| const_number(x).map(|x| x as f32))
                            .collect::<Result<Vec<f32>>>(),
                        Expr::Array(xs, _) => Err(Error::Dimension {
                            vector: exprs[0].to_string(),
                            expected: dim,
                            found: xs.len(),
                            at: At::span(c.span()),
                        }),
                        _ => Err(Error::invalid(
                            "a centroid is a vector: [0.1, …]",
                            Some(c.span()),
                        )),
                    })
                    .collect::<Result<Vec<Vec<f32>>>>()?;
                Ok((
                    BExpr::NearestCentroid {
                        vector: Box::new(vector),
                        centroids: Arc::new(centroids),
                    },
                    Type::Int,
                ))
            }
            Kind::Hash => {
                if exprs.len() > 2 {
                    return Err(Error::invalid(
                        "hash takes 1 or 2 arguments: hash(value[, seed])",
                        Some(span),
                    ));
                }
                let (arg, _) = child(self, exprs[0])?;
                let seed = match exprs.get(1) {
                    None => 0,
                    Some(Expr::Literal(Literal::Int(i), _)) => *i,
                    Some(Expr::Unary {
                        op: UnaryOp::Neg,
                        expr,
                        ..
                    }) if matches!(**expr, Expr::Literal(Literal::Int(_), _)) => match **expr {
                        Expr::Literal(Literal::Int(i), _) => i.wrapping_neg(),
                        _ => 0,
                    },
                    Some(e) => {
                        return Err(Error::invalid(
                            "the seed of hash() is an integer literal",
                            Some(e.span()),
                        ));
                    }
                };
                Ok((
                    BExpr::Hash {
                        arg: Box::new(arg),
                        seed,
                    },
                    Type::Int,
                ))
            }
            Kind::ZScore => {
                let w = self.window_arg(exprs[0])?;
                let (bucket_ms, counts) = (w.bucket_ms, w.field.is_none() && w.expr.is_none());
                let current_ms = duration_arg(exprs[1])?;
                let baseline_ms = duration_arg(exprs[2])?;
                let spans = baseline_ms / current_ms;
                // Spans end at the end of the bucket holding `as_of`; see `eval::zscore`.
                let end = bucket_start(self.as_of, bucket_ms).saturating_add(bucket_ms);
                let from = end.saturating_sub(current_ms.saturating_mul(spans.saturating_add(1)));
                let slot = self.window_slot(w, from);
                Ok((
                    BExpr::ZScore {
                        slot,
                        current_ms,
                        spans,
                        counts,
                    },
                    Type::Float,
                ))
            }
            // The query's time: its AS OF, or the clock.
            Kind::Now => Ok((BExpr::Const(Value::Int(self.as_of)), Type::Int)),
            Kind::Abs => {
                let (b, ty) = child(self, exprs[0])?;
                if !ty.is_numeric() {
                    return Err(mismatch("abs()", "a number", ty, exprs[0].span()));
                }
                Ok((BExpr::Abs(Box::new(b)), ty))
            }
            Kind::Coalesce => {
                let mut out = Vec::new();
                let mut ty = Type::Null;
                for e in &exprs {
                    let (b, t) = child(self, e)?;
                    if ty == Type::Null {
                        ty = t;
                    } else if t != Type::Null && t != ty && !(t.is_numeric() && ty.is_numeric()) {
                        return Err(mismatch("coalesce()", ty, t, e.span()));
                    } else if t == Type::Float {
                        ty = Type::Float;
                    }
                    out.push(b);
                }
                Ok((BExpr::Coalesce(out), ty))
            }
            Kind::Math(func) => {
                let mut out = Vec::with_capacity(exprs.len());
                let mut ty = Type::Null;
                for e in &exprs {
                    let (b, t) = child(self, e)?;
                    let strings = matches!(func, MathFunc::Greatest | MathFunc::Least)
                        && matches!(t, Type::String)
                        && matches!(ty, Type::String | Type::Null);
                    if !t.is_numeric() && !strings {
                        return Err(mismatch(&format!("{lower}()"), "a number", t, e.span()));
                    }
                    if ty == Type::Null || t == Type::Float {
                        ty = t;
                    }
                    out.push(b);
                }
                if func == MathFunc::Round && out.len() > 2 {
                    return Err(Error::invalid(
                        "round takes 1 or 2 arguments: round(x) or round(x, digits)",
                        Some(span),
                    ));
                }
                let ty = match func {
                    // round(x) of an integer is that integer; floor and
                    // ceil keep the type too.
                    MathFunc::Round if out.len() == 1 => ty,
                    MathFunc::Floor | MathFunc::Ceil | MathFunc::Greatest | MathFunc::Least => ty,
                    _ if ty == Type::Null => Type::Null,
                    _ => Type::Float,
                };
                Ok((BExpr::Math(func, out), ty))
            }
            Kind::TopKeys => {
                let (map, _) = self.keyed_arg(exprs[0], child)?;
                let n = match exprs[1] {
                    Expr::Literal(Literal::Int(n), _) if *n > 0 => {
                        usize::try_from(*n).unwrap_or(usize::MAX)
                    }
                    other => {
                        return Err(Error::invalid(
                            "top_keys(feature, n) takes a positive whole number of keys",
                            Some(other.span()),
                        ));
                    }
                };
                Ok((
                    BExpr::TopKeys {
                        map: Box::new(map),
                        n,
                    },
                    Type::Tags,
                ))
            }
            Kind::Centroid | Kind::Aggregate(_) => Err(Error::invalid(
                format!("{lower}() cannot be used here"),
                Some(span),
            )),
        }
    }
    /// Binds a keyed feature argument: the bound map, and whether its values
    /// are counts (integers).
    fn keyed_arg(&mut self, e: &Expr, child: &mut BindChild<'_, 'a>) -> Result<(BExpr, bool)> {
        let (map, ty) = child(self, e)?;
        if ty != Type::Map {
            return Err(Error::invalid(
                format!("expected a keyed feature (… BY field), got {ty}"),
                Some(e.span()),
            ));
        }
        let int = matches!(&map, BExpr::Feature(f) if f.kind == FeatureKind::Count);
        Ok((map, int))
    }

    /// Resolves a vector argument: (definition id, dimension, the row's vector).
    fn vector_arg(&mut self, e: &Expr) -> Result<(u32, usize, BExpr)> {
        let cat = self.catalog;
        let Expr::Column(c) = e else {
            return Err(Error::invalid("expected a vector name", Some(e.span())));
        };
        let v = cat
            .vector(&c.value)
            .ok_or_else(|| unknown("vector", c, cat.vectors.iter().map(|v| v.name.as_str())))?;
        let (id, dim) = (v.id, v.dim as usize);
        let (bound, _) = self.column(c)?;
        Ok((id, dim, bound))
    }

    /// Resolves what a similarity compares against: a user id, a vector literal
    /// of dimension `dim`, or `centroid(vector, segment)`.
    fn target(&mut self, e: &Expr, def: u32, dim: usize) -> Result<Target> {
        let cat = self.catalog;
        let vector_name = cat
            .vectors
            .iter()
            .find(|v| v.id == def)
            .map_or("", |v| v.name.as_str());
        match e {
            // Nothing to compare with: every score is NULL (what a centroid
            // of no members gives, written out).
            Expr::Literal(Literal::Null, _) => Ok(Target::Null),
            Expr::Literal(Literal::String(id), loc) => Ok(Target::User {
                id: id.clone(),
                def,
                span: loc.0,
            }),
            Expr::Array(items, _) => {
                if items.len() != dim {
                    return Err(Error::Dimension {
                        vector: vector_name.to_owned(),
                        expected: dim,
                        found: items.len(),
                        at: At::span(e.span()),
                    });
                }
                let v = items
                    .iter()
                    .map(|x| const_number(x).map(|x| x as f32))
                    .collect::<Result<Vec<f32>>>()?;
                Ok(Target::vector(v))
            }
            Expr::Function { name, args } if name.value.eq_ignore_ascii_case("centroid") => {
                let [FunctionArg::Expr(v), FunctionArg::Expr(Expr::Column(seg))] = args.as_slice()
                else {
                    return Err(Error::invalid(
                        "centroid takes 2 arguments: centroid(vector, segment)",
                        Some(e.span()),
                    ));
                };
                let (cdef, cdim, _) = self.vector_arg(v)?;
                if cdim != dim {
                    return Err(Error::Dimension {
                        vector: vector_name.to_owned(),
                        expected: dim,
                        found: cdim,
                        at: At::span(v.span()),
                    });
                }
                let members = self.segment(seg)?;
                Ok(Target::Centroid {
                    def: cdef,
                    members: Box::new(members),
                })
            }
            _ => Err(Error::invalid(
                "expected a user id ('u1'), a vector ([0.1, …]), centroid(vector, segment) or NULL",
                Some(e.span()),
            )),
        }
    }

    /// Resolves a window argument: (id, bucket width, whether it counts events).
    fn window_arg(&self, e: &Expr) -> Result<&'a WindowDef> {
        let cat = self.catalog;
        let Expr::Column(c) = e else {
            return Err(Error::invalid("expected a window name", Some(e.span())));
        };
        let w = cat
            .window(&c.value)
            .ok_or_else(|| unknown("window", c, cat.windows.iter().map(|w| w.name.as_str())))?;
        Ok(w)
    }

    /// The slot of window `id` in the row needs, widened to reach back to `from`.
    fn window_slot(&mut self, def: &WindowDef, from: i64) -> usize {
        let as_of = self.as_of;
        if let Some(i) = self.needs.windows.iter().position(|w| w.id == def.id) {
            let w = &mut self.needs.windows[i];
            w.from = w.from.min(from);
            w.to = w.to.max(as_of);
            return i;
        }
        self.needs.windows.push(WindowNeed::of(def, from, as_of));
        self.needs.windows.len() - 1
    }
}

/// A stored segment's predicate as an expression: its text parsed, or, for
/// a cluster's segment, `nearest_cluster(group) = index` built from the typed
/// definition.
///
/// # Errors
/// The parse error of stored text that no longer parses.
pub(crate) fn segment_expr(seg: &SegmentDef) -> std::result::Result<Expr, crate::ParseError> {
    match &seg.cluster {
        Some(c) => Ok(Expr::Binary {
            left: Box::new(Expr::Function {
                name: Ident::new("nearest_cluster"),
                args: vec![FunctionArg::Expr(Expr::Column(Ident::new(&c.group)))],
            }),
            op: BinaryOp::Eq,
            right: Box::new(Expr::Literal(
                Literal::Int(i64::try_from(c.index).unwrap_or(i64::MAX)),
                crate::ast::Loc::default(),
            )),
        }),
        None => parse_expr(&seg.predicate),
    }
}

/// The aggregate `name(args)` denotes, if any.
pub(crate) fn agg_func(name: &str, args: &[FunctionArg]) -> Option<AggFunc> {
    functions::aggregate(name, args)
}

/// Whether `e` contains an aggregate call.
pub(crate) fn has_aggregate(e: &Expr) -> bool {
    match e {
        Expr::Function { name, args } => {
            agg_func(&name.value, args).is_some()
                || args
                    .iter()
                    .any(|a| matches!(a, FunctionArg::Expr(e) if has_aggregate(e)))
        }
        Expr::Unary { expr, .. } | Expr::IsNull { expr, .. } => has_aggregate(expr),
        Expr::Binary { left, right, .. } => has_aggregate(left) || has_aggregate(right),
        Expr::Between {
            expr, low, high, ..
        } => has_aggregate(expr) || has_aggregate(low) || has_aggregate(high),
        Expr::InList { expr, list, .. } => has_aggregate(expr) || list.iter().any(has_aggregate),
        Expr::Array(items, _) => items.iter().any(has_aggregate),
        Expr::Index { expr, key, .. } => has_aggregate(expr) || has_aggregate(key),
        Expr::Case { .. } => e.children().into_iter().any(has_aggregate),
        Expr::Column(_) | Expr::Literal(..) | Expr::InSegment(_) => false,
    }
}

/// Every name a column may have, for suggestions.
fn column_names(cat: &Catalog) -> impl Iterator<Item = &str> {
    std::iter::once("id")
        .chain(cat.attributes.iter().map(|d| d.name.as_str()))
        .chain(cat.features.iter().map(|d| d.name.as_str()))
        .chain(cat.vectors.iter().map(|d| d.name.as_str()))
        .chain(cat.windows.iter().map(|d| d.name.as_str()))
        .chain(cat.segments.iter().map(|d| d.name.as_str()))
}

/// An unknown-name error with the closest of `names` suggested.
pub(crate) fn unknown<'n>(
    kind: &'static str,
    name: &Ident,
    names: impl IntoIterator<Item = &'n str>,
) -> Error {
    Error::Unknown {
        kind,
        name: name.value.clone(),
        suggestion: closest(&name.value, names),
        at: At::span(name.span()),
    }
}

/// A duration argument: a string such as `'7d'`.
fn duration_arg(e: &Expr) -> Result<i64> {
    match e {
        Expr::Literal(Literal::String(s), _) => profiledb_storage::time::parse_duration(s)
            .map_err(|err| Error::invalid(err.to_string(), Some(e.span()))),
        _ => Err(Error::invalid(
            "expected a duration such as '7d'",
            Some(e.span()),
        )),
    }
}

/// A constant number, as written in a vector literal.
pub(crate) fn const_number(e: &Expr) -> Result<f64> {
    match e {
        Expr::Literal(Literal::Int(i), _) => Ok(*i as f64),
        Expr::Literal(Literal::Float(x), _) if (*x as f32).is_finite() => Ok(*x),
        Expr::Literal(Literal::Float(x), _) => Err(Error::invalid(
            format!("vector element {x:?} is beyond the range of a 32-bit float"),
            Some(e.span()),
        )),
        Expr::Unary {
            op: UnaryOp::Neg,
            expr,
            ..
        } => const_number(expr).map(|x| -x),
        _ => Err(Error::invalid(
            "a vector element must be a number",
            Some(e.span()),
        )),
    }
}
