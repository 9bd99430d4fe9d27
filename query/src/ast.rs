//! The syntax tree. Every node prints back as text that parses to an equal tree:
//! `Display` is the canonical spelling, used for stored segment predicates, for
//! `EXPLAIN` and for default column names.
//!
//! Nodes carry the [`Loc`] they were parsed from, for error carets. A `Loc`
//! compares equal to every other, so trees compare by meaning, not by layout.

use crate::lexer::Keyword;
use std::fmt;

use profiledb_storage::AttrType;
use profiledb_storage::catalog::FieldType;
use profiledb_storage::time::format_duration;

use crate::error::Span;

/// Where a node was written. Always equal to any other `Loc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Loc(pub Span);

impl PartialEq for Loc {
    fn eq(&self, _: &Loc) -> bool {
        true
    }
}

/// A name: a schema item, event type, field, column or function.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    /// The name, unquoted.
    pub value: String,
    /// Where it was written.
    pub loc: Loc,
}

impl Ident {
    /// A name with no location.
    pub fn new(value: impl Into<String>) -> Ident {
        Ident {
            value: value.into(),
            loc: Loc::default(),
        }
    }

    /// Its span.
    pub fn span(&self) -> Span {
        self.loc.0
    }
}

/// Words that cannot be written bare as a name, because the grammar gives them a
/// meaning where a name may also stand.
pub const RESERVED: &[&str] = &[
    "ALL", "AND", "AS", "ASC", "BETWEEN", "BY", "DESC", "FALSE", "FROM", "GROUP", "IN", "IS",
    "LIMIT", "NOT", "NULL", "OF", "ON", "OR", "ORDER", "SELECT", "TRUE", "WHERE",
];

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = &self.value;
        let bare = v
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(v));
        if bare {
            f.write_str(v)
        } else {
            write!(f, "\"{}\"", v.replace('"', "\"\""))
        }
    }
}

/// A duration literal (`'7d'`), kept in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Duration {
    /// Length in ms.
    pub ms: i64,
    /// Where it was written.
    pub loc: Loc,
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", format_duration(self.ms))
    }
}

/// The kinds of schema item, as named in `DROP` and `SHOW`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// Attributes.
    Attribute,
    /// Features.
    Feature,
    /// Windows.
    Window,
    /// Vectors.
    Vector,
    /// Segments.
    Segment,
}

impl ObjectKind {
    /// All kinds, in `SHOW` order.
    pub const ALL: [ObjectKind; 5] = [
        ObjectKind::Attribute,
        ObjectKind::Feature,
        ObjectKind::Window,
        ObjectKind::Vector,
        ObjectKind::Segment,
    ];

    /// The singular keyword.
    pub fn keyword(self) -> Keyword {
        match self {
            ObjectKind::Attribute => Keyword::Attribute,
            ObjectKind::Feature => Keyword::Feature,
            ObjectKind::Window => Keyword::Window,
            ObjectKind::Vector => Keyword::Vector,
            ObjectKind::Segment => Keyword::Segment,
        }
    }
}

/// A feature's aggregate, as written after `AS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureFunc {
    /// `COUNT()`
    Count,
    /// `SUM(f)`
    Sum,
    /// `MIN(f)`
    Min,
    /// `MAX(f)`
    Max,
    /// `LAST(f)`
    Last,
    /// `DECAYED_COUNT()`
    DecayedCount,
    /// `DECAYED_SUM(f)`
    DecayedSum,
    /// `DECAYED_AVG(f)`
    DecayedAvg,
    /// `BETA(f)`
    Beta,
    /// `COUNT_DISTINCT(f)`
    CountDistinct,
    /// `RATE(success_type)`: successes of one event type over trials of the others.
    Rate,
    /// `FIRST_SEEN()`: the time of the first event, `MIN(ts)`.
    FirstSeen,
    /// `LAST_SEEN()`: the time of the latest event, `MAX(ts)`.
    LastSeen,
}

impl FeatureFunc {
    /// Every aggregate.
    pub const ALL: [FeatureFunc; 13] = [
        FeatureFunc::Count,
        FeatureFunc::Sum,
        FeatureFunc::Min,
        FeatureFunc::Max,
        FeatureFunc::Last,
        FeatureFunc::DecayedCount,
        FeatureFunc::DecayedSum,
        FeatureFunc::DecayedAvg,
        FeatureFunc::Beta,
        FeatureFunc::CountDistinct,
        FeatureFunc::Rate,
        FeatureFunc::FirstSeen,
        FeatureFunc::LastSeen,
    ];

    /// Its keyword.
    pub fn keyword(self) -> Keyword {
        match self {
            FeatureFunc::Count => Keyword::Count,
            FeatureFunc::Sum => Keyword::Sum,
            FeatureFunc::Min => Keyword::Min,
            FeatureFunc::Max => Keyword::Max,
            FeatureFunc::Last => Keyword::Last,
            FeatureFunc::DecayedCount => Keyword::DecayedCount,
            FeatureFunc::DecayedSum => Keyword::DecayedSum,
            FeatureFunc::DecayedAvg => Keyword::DecayedAvg,
            FeatureFunc::Beta => Keyword::Beta,
            FeatureFunc::CountDistinct => Keyword::CountDistinct,
            FeatureFunc::Rate => Keyword::Rate,
            FeatureFunc::FirstSeen => Keyword::FirstSeen,
            FeatureFunc::LastSeen => Keyword::LastSeen,
        }
    }

    /// Whether it reads an event field.
    pub fn takes_field(self) -> bool {
        !matches!(
            self,
            FeatureFunc::Count
                | FeatureFunc::DecayedCount
                | FeatureFunc::FirstSeen
                | FeatureFunc::LastSeen
        )
    }

    /// Whether it decays, and so needs a `HALF_LIFE`.
    pub fn decays(self) -> bool {
        matches!(
            self,
            FeatureFunc::DecayedCount
                | FeatureFunc::DecayedSum
                | FeatureFunc::DecayedAvg
                | FeatureFunc::Beta
                | FeatureFunc::Rate
        )
    }
}

/// A vector's update rule, as written after `AS`.
#[derive(Debug, Clone, PartialEq)]
pub enum VectorSpec {
    /// `EWMA(field) … HALF_LIFE d`
    Ewma {
        /// Field holding the event vector.
        field: Ident,
        /// Half-life.
        half_life: Duration,
    },
    /// `SGD(item_field, label_field) … LEARNING_RATE x [L2 y]`
    Sgd {
        /// Field holding the item vector.
        item: Ident,
        /// Field holding the 0/1 label.
        label: Ident,
        /// Learning rate.
        learning_rate: f64,
        /// L2 penalty (0 when not written).
        l2: f64,
    },
}

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `CREATE ATTRIBUTE name TYPE [ON event_type]`
    CreateAttribute {
        /// Name.
        name: Ident,
        /// Type.
        ty: AttrType,
        /// Event type whose field of the same name sets it.
        on: Option<Ident>,
    },
    /// `CREATE FEATURE name ON event AS FUNC([field]) [HALF_LIFE d] [PRIOR (a, b)]`
    CreateFeature {
        /// Name.
        name: Ident,
        /// Event type.
        event: Ident,
        /// More event types it is bound to (`ON purchase, add_to_cart`).
        also_on: Vec<Ident>,
        /// `WHERE`: which events it takes.
        filter: Option<Expr>,
        /// Aggregate.
        func: FeatureFunc,
        /// Field, for aggregates that read one.
        field: Option<Ident>,
        /// A number computed from the event's fields, in place of `field`
        /// (`SUM(price * qty)`).
        arg: Option<Expr>,
        /// Half-life, for decayed aggregates.
        half_life: Option<Duration>,
        /// Beta prior (a₀, b₀).
        prior: Option<(f64, f64)>,
        /// `BY field TOP n`: kept per value of an event field.
        by: Option<KeyedSpec>,
    },
    /// `CREATE WINDOW name ON event [OF field] BUCKET d RETAIN d`
    CreateWindow {
        /// Name.
        name: Ident,
        /// Event type.
        event: Ident,
        /// More event types it is bound to (`ON purchase, add_to_cart`).
        also_on: Vec<Ident>,
        /// `WHERE`: which events it takes.
        filter: Option<Expr>,
        /// Field aggregated; counts events when absent.
        field: Option<Ident>,
        /// A number computed from the event's fields, in place of `field`.
        arg: Option<Expr>,
        /// Bucket width.
        bucket: Duration,
        /// Retention.
        retain: Duration,
    },
    /// `CREATE VECTOR name ON event AS RULE(..) DIM n …`
    CreateVector {
        /// Name.
        name: Ident,
        /// Event type.
        event: Ident,
        /// More event types it is bound to (`ON purchase, add_to_cart`).
        also_on: Vec<Ident>,
        /// `WHERE`: which events it takes.
        filter: Option<Expr>,
        /// Dimension.
        dim: u32,
        /// Update rule.
        spec: VectorSpec,
    },
    /// `CREATE SEGMENT name AS predicate`
    CreateSegment {
        /// Name.
        name: Ident,
        /// Membership predicate.
        predicate: Expr,
    },
    /// `DROP kind [IF EXISTS] name`
    Drop {
        /// Kind.
        kind: ObjectKind,
        /// Name.
        name: Ident,
        /// `IF EXISTS`: no such item is no error.
        if_exists: bool,
    },
    /// `SHOW kinds`
    Show {
        /// Kind listed.
        kind: ObjectKind,
    },
    /// `DESCRIBE name`
    Describe {
        /// The item.
        name: Ident,
    },
    /// `INSERT INTO event (user, ts, …) VALUES (…), …`
    Insert {
        /// Event type.
        event: Ident,
        /// Columns: `user`, `ts` and event fields.
        columns: Vec<Ident>,
        /// Rows of constant expressions.
        rows: Vec<Vec<Expr>>,
    },
    /// `UPDATE users SET a = x, … WHERE predicate`
    Update {
        /// Attribute assignments.
        assignments: Vec<(Ident, Expr)>,
        /// Which users.
        selection: Expr,
    },
    /// `DELETE USER 'id'`
    DeleteUser {
        /// The user id.
        user: String,
        /// Where it was written.
        loc: Loc,
    },
    /// `DELETE FROM users WHERE predicate`
    Delete {
        /// Which users.
        selection: Expr,
    },
    /// `SELECT …`
    Select(Box<Select>),
    /// `EXPLAIN statement`
    Explain(Box<Statement>),
    /// `CLUSTER users BY vector INTO k [WHERE p] [SEED n]`
    Cluster(Box<Cluster>),
    /// `CREATE SEGMENTS name FROM CLUSTER users BY vector INTO k [WHERE p] [SEED n]`
    CreateSegments {
        /// Group name; the segments are `name_0` … `name_{k-1}`.
        name: Ident,
        /// The clustering.
        cluster: Box<Cluster>,
    },
    /// `DROP SEGMENTS [IF EXISTS] name`: a segment group and all its segments.
    DropSegments {
        /// Group name.
        name: Ident,
        /// `IF EXISTS`: no such group is no error.
        if_exists: bool,
    },
    /// `VACUUM`: purge deleted users' data from every file on disk.
    Vacuum,
    /// `ALTER DATABASE SET HISTORY 'd'`: how long accepted writes are kept in
    /// the event history (`'0s'` keeps none).
    SetHistory {
        /// The horizon; 0 turns history off.
        horizon: Duration,
    },
    /// `SHOW HISTORY`: the history horizon.
    ShowHistory,
    /// `ALTER DATABASE SET USER TTL 'd'`: users with no write for that long
    /// are deleted (`'0s'` keeps all).
    SetUserTtl {
        /// The TTL; 0 keeps every user.
        ttl: Duration,
    },
    /// `CREATE EVENT name (field TYPE [NOT NULL] [DEFAULT constant], …)`.
    CreateEvent {
        /// The event type.
        name: Ident,
        /// Its fields.
        fields: Vec<FieldSpec>,
    },
    /// `ALTER EVENT name ADD FIELD field TYPE …`.
    AlterEventAddField {
        /// The event type.
        event: Ident,
        /// The new field.
        field: FieldSpec,
    },
    /// `DROP EVENT [IF EXISTS] name`: the declaration only.
    DropEvent {
        /// The event type.
        name: Ident,
        /// `IF EXISTS`: a missing declaration is not an error.
        if_exists: bool,
    },
    /// `SHOW EVENTS`: every event type, declared or bound to.
    ShowEvents,
    /// `BUCKETS window FOR 'user' OVER 'span' [FILL ZEROS] [AS OF t]`: one
    /// user's buckets of a window over the span ending at t.
    Buckets {
        /// The window.
        window: Ident,
        /// The user id: a string literal.
        user: Expr,
        /// The span, back from t.
        span: Duration,
        /// `FILL ZEROS`: empty buckets too, counting 0.
        fill: bool,
        /// `AS OF`.
        as_of: Option<Expr>,
    },
    /// `DESCRIBE EVENT name`.
    DescribeEvent {
        /// The event type.
        name: Ident,
    },
    /// `CREATE INDEX name ON users USING ivf (vector) [WITH (lists = n,
    /// probes = n, rerank = n)]`.
    CreateIndex {
        /// The index.
        name: Ident,
        /// The table: `users`.
        table: Ident,
        /// The method: `ivf`.
        method: Ident,
        /// The vector indexed.
        vector: Ident,
        /// Its settings.
        with: Vec<WithOption>,
    },
    /// `DROP INDEX [IF EXISTS] name`.
    DropIndex {
        /// The index.
        name: Ident,
        /// `IF EXISTS`: no such index is no error.
        if_exists: bool,
    },
    /// `SHOW INDEXES`.
    ShowIndexes,
    /// `ANALYZE INDEX name [WITH (queries = n, probes = n, metric = 'cosine')]`:
    /// measures the index's recall@10 against the exact scan.
    AnalyzeIndex {
        /// The index.
        name: Ident,
        /// Its settings.
        with: Vec<WithOption>,
    },
    /// `CREATE kind IF NOT EXISTS name …`: one of the `Create*` statements
    /// (or `CREATE SEGMENTS`), which does nothing when the name is taken.
    CreateIfNotExists(Box<Statement>),
    /// `CREATE OR REPLACE item …`: one of the `Create*` statements of an
    /// attribute, feature, window, vector or segment, replacing the item of
    /// that name (re-derived from the event history).
    CreateOrReplace(Box<Statement>),
    /// `ALTER FEATURE|WINDOW|VECTOR name SET setting`: a half-life or a
    /// learning rule re-derives the item from the event history; a prior or
    /// a retention changes in place.
    Alter {
        /// `Feature`, `Window` or `Vector`.
        kind: ObjectKind,
        /// The item.
        name: Ident,
        /// What changes.
        setting: AlterSetting,
    },
}

/// `BY field [TOP n]` of a keyed feature.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyedSpec {
    /// The event field whose values are the keys.
    pub field: Ident,
    /// Most keys kept per user.
    pub top: u32,
}

/// The keys a keyed feature keeps per user when `TOP` is not given.
pub const DEFAULT_TOP: u32 = 100;

/// A declared field of `CREATE EVENT`: `name TYPE [NOT NULL] [DEFAULT constant]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSpec {
    /// Name.
    pub name: Ident,
    /// Type.
    pub ty: FieldType,
    /// `NOT NULL`: every event carries it.
    pub not_null: bool,
    /// `DEFAULT constant`: what an event that lacks it takes.
    pub default: Option<(Literal, Loc)>,
}

impl fmt::Display for FieldSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.ty)?;
        if self.not_null {
            f.write_str(" NOT NULL")?;
        }
        if let Some((d, _)) = &self.default {
            write!(f, " DEFAULT {d}")?;
        }
        Ok(())
    }
}

/// What an `ALTER` of an item changes.
#[derive(Debug, Clone, PartialEq)]
pub enum AlterSetting {
    /// `HALF_LIFE 'd'`: a decayed feature, a beta or rate, an ewma vector.
    HalfLife(Duration),
    /// `PRIOR (a, b)`: a beta or rate.
    Prior(f64, f64),
    /// `RETAIN 'd'`: a window.
    Retain(Duration),
    /// `LEARNING_RATE x`: an sgd vector.
    LearningRate(f64),
    /// `L2 x`: an sgd vector.
    L2(f64),
}

impl fmt::Display for AlterSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlterSetting::HalfLife(d) => write!(f, "HALF_LIFE {d}"),
            AlterSetting::Prior(a, b) => write!(f, "PRIOR ({}, {})", float(*a), float(*b)),
            AlterSetting::Retain(d) => write!(f, "RETAIN {d}"),
            AlterSetting::LearningRate(x) => write!(f, "LEARNING_RATE {}", float(*x)),
            AlterSetting::L2(x) => write!(f, "L2 {}", float(*x)),
        }
    }
}

impl Statement {
    /// Whether the statement writes users' data (`INSERT`, `UPDATE`,
    /// `DELETE`): what a cluster's node takes only from its log.
    pub fn writes_users(&self) -> bool {
        matches!(
            self,
            Statement::Insert { .. }
                | Statement::Update { .. }
                | Statement::DeleteUser { .. }
                | Statement::Delete { .. }
        )
    }

    /// Whether the statement only reads: it changes no data and no schema.
    pub fn is_read_only(&self) -> bool {
        matches!(
            self,
            Statement::Show { .. }
                | Statement::ShowHistory
                | Statement::ShowEvents
                | Statement::Buckets { .. }
                | Statement::DescribeEvent { .. }
                | Statement::Describe { .. }
                | Statement::Select(_)
                | Statement::Explain(_)
                | Statement::Cluster(_)
                | Statement::ShowIndexes
                | Statement::AnalyzeIndex { .. }
        )
    }
}

/// A k-means clustering of users' vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// The vector clustered.
    pub vector: Ident,
    /// Number of clusters.
    pub k: u64,
    /// Which users take part.
    pub selection: Option<Expr>,
    /// Seed of the k-means++ initialisation (0 when not written).
    pub seed: Option<u64>,
}

impl fmt::Display for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CLUSTER users BY {} INTO {}", self.vector, self.k)?;
        if let Some(w) = &self.selection {
            write!(f, " WHERE {w}")?;
        }
        if let Some(seed) = self.seed {
            write!(f, " SEED {seed}")?;
        }
        Ok(())
    }
}

/// A `SELECT` over users.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Select {
    /// `SELECT DISTINCT`: repeated rows once.
    pub distinct: bool,
    /// The select list.
    pub projection: Vec<SelectItem>,
    /// The table (always `users`); `None` for a select of constants
    /// (`SELECT 1 + 1`), which gives one row.
    pub from: Option<Ident>,
    /// `WHERE`
    pub selection: Option<Expr>,
    /// `GROUP BY`
    pub group_by: Vec<Expr>,
    /// `HAVING`: which groups are kept.
    pub having: Option<Expr>,
    /// `ORDER BY`
    pub order_by: Vec<OrderBy>,
    /// `LIMIT`
    pub limit: Option<u64>,
    /// `OFFSET`: rows skipped before the limit counts.
    pub offset: Option<u64>,
    /// `AS OF`: a timestamp string or epoch ms.
    pub as_of: Option<Expr>,
    /// `WITH (probes = 64, exact = true)`: how a similarity top-k searches.
    pub with: Vec<WithOption>,
}

/// One `key = value` of a `WITH (…)` list.
#[derive(Debug, Clone, PartialEq)]
pub struct WithOption {
    /// The setting.
    pub key: Ident,
    /// Its value: a constant or a bind parameter.
    pub value: Expr,
}

impl fmt::Display for WithOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}", self.key, self.value)
    }
}

/// ` WITH (a = 1, b = 2)`, or nothing.
fn with_list(options: &[WithOption]) -> String {
    if options.is_empty() {
        return String::new();
    }
    let items: Vec<String> = options.iter().map(ToString::to_string).collect();
    format!(" WITH ({})", items.join(", "))
}

/// One item of a select list.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    /// `*`
    Wildcard(Loc),
    /// `expr [AS alias]`
    Expr {
        /// The expression.
        expr: Expr,
        /// Its alias.
        alias: Option<Ident>,
    },
}

/// One `ORDER BY` key.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    /// The key.
    pub expr: Expr,
    /// Descending.
    pub desc: bool,
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `NULL`
    Null,
    /// `TRUE` / `FALSE`
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    String(String),
}

/// Prefix operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `NOT`
    Not,
    /// `-`
    Neg,
}

/// Infix operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `OR`
    Or,
    /// `AND`
    And,
    /// `=`
    Eq,
    /// `!=`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
    /// `LIKE`: a pattern match, `%` any run and `_` any one character.
    Like,
    /// `ILIKE`: `LIKE` ignoring case.
    ILike,
}

/// Binding powers, loosest first.
pub(crate) mod prec {
    pub const OR: u8 = 1;
    pub const AND: u8 = 2;
    pub const NOT: u8 = 3;
    pub const CMP: u8 = 4;
    pub const ADD: u8 = 5;
    pub const MUL: u8 = 6;
    pub const NEG: u8 = 7;
    pub const ATOM: u8 = 8;
}

impl BinaryOp {
    /// Its binding power.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => prec::OR,
            BinaryOp::And => prec::AND,
            BinaryOp::Eq
            | BinaryOp::NotEq
            | BinaryOp::Lt
            | BinaryOp::LtEq
            | BinaryOp::Gt
            | BinaryOp::GtEq
            | BinaryOp::Like
            | BinaryOp::ILike => prec::CMP,
            BinaryOp::Add | BinaryOp::Sub => prec::ADD,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => prec::MUL,
        }
    }

    /// Its spelling.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "OR",
            BinaryOp::And => "AND",
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::Like => "LIKE",
            BinaryOp::ILike => "ILIKE",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
        }
    }

    /// Whether it compares.
    pub fn is_comparison(self) -> bool {
        self.precedence() == prec::CMP
    }
}

/// A function argument.
#[derive(Debug, Clone, PartialEq)]
pub enum FunctionArg {
    /// `*`, as in `count(*)`.
    Star,
    /// `DISTINCT expr`, as in `count(DISTINCT x)`.
    Distinct(Expr),
    /// An expression.
    Expr(Expr),
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A column: `id`, an attribute, a feature or a vector.
    Column(Ident),
    /// A literal.
    Literal(Literal, Loc),
    /// `[x, y, …]`
    Array(Vec<Expr>, Loc),
    /// `NOT e`, `-e`
    Unary {
        /// Operator.
        op: UnaryOp,
        /// Operand.
        expr: Box<Expr>,
        /// Where the operator was written.
        loc: Loc,
    },
    /// `a op b`
    Binary {
        /// Left operand.
        left: Box<Expr>,
        /// Operator.
        op: BinaryOp,
        /// Right operand.
        right: Box<Expr>,
    },
    /// `e [NOT] BETWEEN low AND high`
    Between {
        /// Tested value.
        expr: Box<Expr>,
        /// `NOT BETWEEN`
        negated: bool,
        /// Lower bound, inclusive.
        low: Box<Expr>,
        /// Upper bound, inclusive.
        high: Box<Expr>,
    },
    /// `e [NOT] IN (a, b, …)`
    InList {
        /// Tested value.
        expr: Box<Expr>,
        /// `NOT IN`
        negated: bool,
        /// Candidates.
        list: Vec<Expr>,
    },
    /// `e IS [NOT] NULL`
    IsNull {
        /// Tested value.
        expr: Box<Expr>,
        /// `IS NOT NULL`
        negated: bool,
    },
    /// `IN SEGMENT name`
    InSegment(Ident),
    /// `CASE [operand] WHEN a THEN x … [ELSE y] END`.
    Case {
        /// The value compared with each `WHEN` (a simple `CASE`), if any.
        operand: Option<Box<Expr>>,
        /// The `WHEN` conditions (or values) and their results.
        whens: Vec<(Expr, Expr)>,
        /// `ELSE`; NULL when absent.
        otherwise: Option<Box<Expr>>,
        /// Where `CASE` … `END` was written.
        loc: Loc,
    },
    /// `map[key]`: a keyed feature's value for one key.
    Index {
        /// The keyed feature.
        expr: Box<Expr>,
        /// The key.
        key: Box<Expr>,
        /// Where the closing `]` was written.
        end: Loc,
    },
    /// `name(args)`
    Function {
        /// Function name.
        name: Ident,
        /// Arguments.
        args: Vec<FunctionArg>,
    },
}

impl Expr {
    /// The expressions directly inside this one, the tested (or left) one first.
    pub fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Column(_) | Expr::Literal(..) | Expr::InSegment(_) => Vec::new(),
            Expr::Array(items, _) => items.iter().collect(),
            Expr::Unary { expr, .. } | Expr::IsNull { expr, .. } => vec![expr],
            Expr::Binary { left, right, .. }
            | Expr::Index {
                expr: left,
                key: right,
                ..
            } => vec![left, right],
            Expr::Between {
                expr, low, high, ..
            } => vec![expr, low, high],
            Expr::InList { expr, list, .. } => std::iter::once(expr.as_ref()).chain(list).collect(),
            Expr::Function { args, .. } => args
                .iter()
                .filter_map(|a| match a {
                    FunctionArg::Expr(e) | FunctionArg::Distinct(e) => Some(e),
                    FunctionArg::Star => None,
                })
                .collect(),
            Expr::Case {
                operand,
                whens,
                otherwise,
                ..
            } => operand
                .iter()
                .map(Box::as_ref)
                .chain(whens.iter().flat_map(|(w, t)| [w, t]))
                .chain(otherwise.iter().map(Box::as_ref))
                .collect(),
        }
    }

    /// How many levels the tree has: 1 for a leaf. Computed without recursion, so
    /// it is safe on any tree.
    pub fn height(&self) -> usize {
        let mut stack = vec![(self, 1)];
        let mut height = 0;
        while let Some((e, level)) = stack.pop() {
            height = height.max(level);
            stack.extend(e.children().into_iter().map(|c| (c, level + 1)));
        }
        height
    }

    /// The span the expression was parsed from.
    pub fn span(&self) -> Span {
        match self {
            Expr::Column(i) | Expr::InSegment(i) => i.span(),
            Expr::Literal(_, l) | Expr::Array(_, l) => l.0,
            Expr::Unary { expr, loc, .. } => loc.0.to(expr.span()),
            Expr::Binary { left, right, .. } => left.span().to(right.span()),
            Expr::Between { expr, high, .. } => expr.span().to(high.span()),
            Expr::InList { expr, list, .. } => list
                .last()
                .map_or(expr.span(), |l| expr.span().to(l.span())),
            Expr::IsNull { expr, .. } => expr.span(),
            Expr::Index { expr, end, .. } => expr.span().to(end.0),
            Expr::Case { loc, .. } => loc.0,
            Expr::Function { name, args } => args.iter().fold(name.span(), |s, a| match a {
                FunctionArg::Expr(e) | FunctionArg::Distinct(e) => s.to(e.span()),
                FunctionArg::Star => s,
            }),
        }
    }

    /// How tightly the printed expression binds, for deciding on parentheses.
    fn precedence(&self) -> u8 {
        match self {
            Expr::Binary { op, .. } => op.precedence(),
            Expr::Unary {
                op: UnaryOp::Not, ..
            } => prec::NOT,
            Expr::Unary {
                op: UnaryOp::Neg, ..
            } => prec::NEG,
            Expr::Between { .. } | Expr::InList { .. } | Expr::IsNull { .. } => prec::CMP,
            Expr::Literal(Literal::Int(i), _) if *i < 0 => prec::NEG,
            Expr::Literal(Literal::Float(x), _) if x.is_sign_negative() => prec::NEG,
            _ => prec::ATOM,
        }
    }

    /// Writes `self`, in parentheses when it binds looser than `min`.
    fn fmt_at(&self, f: &mut fmt::Formatter<'_>, min: u8) -> fmt::Result {
        if self.precedence() < min {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("NULL"),
            Literal::Bool(b) => f.write_str(if *b { "TRUE" } else { "FALSE" }),
            Literal::Int(i) => write!(f, "{i}"),
            // `{:?}` is the shortest text that reads back as the same f64, and
            // always has a '.' or an exponent, so it never reads back as an int.
            Literal::Float(x) => write!(f, "{x:?}"),
            Literal::String(s) => write!(f, "'{}'", s.replace('\'', "''")),
        }
    }
}

fn comma_list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

impl fmt::Display for FunctionArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FunctionArg::Star => f.write_str("*"),
            FunctionArg::Expr(e) => write!(f, "{e}"),
            FunctionArg::Distinct(e) => write!(f, "DISTINCT {e}"),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Column(i) => write!(f, "{i}"),
            Expr::Literal(l, _) => write!(f, "{l}"),
            Expr::Array(items, _) => {
                f.write_str("[")?;
                comma_list(f, items)?;
                f.write_str("]")
            }
            Expr::Unary {
                op: UnaryOp::Not,
                expr,
                ..
            } => {
                f.write_str("NOT ")?;
                expr.fmt_at(f, prec::NOT)
            }
            Expr::Unary {
                op: UnaryOp::Neg,
                expr,
                ..
            } => {
                // `- -x`, not `-(-x)`: parentheses would nest deeper than the
                // text that was parsed, and `--` would start a comment.
                let operand = expr.to_string();
                if expr.precedence() < prec::NEG {
                    write!(f, "-({operand})")
                } else if operand.starts_with('-') {
                    write!(f, "- {operand}")
                } else {
                    write!(f, "-{operand}")
                }
            }
            Expr::Binary { left, op, right } => {
                let p = op.precedence();
                // Comparisons do not chain, and the rest associate to the left.
                let left_min = if op.is_comparison() { p + 1 } else { p };
                left.fmt_at(f, left_min)?;
                write!(f, " {} ", op.symbol())?;
                right.fmt_at(f, p + 1)
            }
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                expr.fmt_at(f, prec::ADD)?;
                f.write_str(if *negated {
                    " NOT BETWEEN "
                } else {
                    " BETWEEN "
                })?;
                low.fmt_at(f, prec::ADD)?;
                f.write_str(" AND ")?;
                high.fmt_at(f, prec::ADD)
            }
            Expr::InList {
                expr,
                negated,
                list,
            } => {
                expr.fmt_at(f, prec::ADD)?;
                f.write_str(if *negated { " NOT IN (" } else { " IN (" })?;
                comma_list(f, list)?;
                f.write_str(")")
            }
            Expr::IsNull { expr, negated } => {
                expr.fmt_at(f, prec::ADD)?;
                f.write_str(if *negated { " IS NOT NULL" } else { " IS NULL" })
            }
            Expr::InSegment(s) => write!(f, "IN SEGMENT {s}"),
            Expr::Index { expr, key, .. } => {
                expr.fmt_at(f, prec::ATOM)?;
                write!(f, "[{key}]")
            }
            Expr::Case {
                operand,
                whens,
                otherwise,
                ..
            } => {
                f.write_str("CASE")?;
                if let Some(o) = operand {
                    write!(f, " {o}")?;
                }
                for (w, t) in whens {
                    write!(f, " WHEN {w} THEN {t}")?;
                }
                if let Some(e) = otherwise {
                    write!(f, " ELSE {e}")?;
                }
                f.write_str(" END")
            }
            Expr::Function { name, args } => {
                write!(f, "{name}(")?;
                comma_list(f, args)?;
                f.write_str(")")
            }
        }
    }
}

impl fmt::Display for SelectItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectItem::Wildcard(_) => f.write_str("*"),
            SelectItem::Expr { expr, alias: None } => write!(f, "{expr}"),
            SelectItem::Expr {
                expr,
                alias: Some(a),
            } => write!(f, "{expr} AS {a}"),
        }
    }
}

impl fmt::Display for OrderBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.expr, if self.desc { " DESC" } else { "" })
    }
}

impl fmt::Display for Select {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.distinct {
            "SELECT DISTINCT "
        } else {
            "SELECT "
        })?;
        comma_list(f, &self.projection)?;
        if let Some(from) = &self.from {
            write!(f, " FROM {from}")?;
        }
        if let Some(w) = &self.selection {
            write!(f, " WHERE {w}")?;
        }
        if !self.group_by.is_empty() {
            f.write_str(" GROUP BY ")?;
            comma_list(f, &self.group_by)?;
        }
        if let Some(h) = &self.having {
            write!(f, " HAVING {h}")?;
        }
        if !self.order_by.is_empty() {
            f.write_str(" ORDER BY ")?;
            comma_list(f, &self.order_by)?;
        }
        if let Some(n) = self.limit {
            write!(f, " LIMIT {n}")?;
        }
        if let Some(n) = self.offset {
            write!(f, " OFFSET {n}")?;
        }
        if let Some(t) = &self.as_of {
            write!(f, " AS OF {t}")?;
        }
        f.write_str(&with_list(&self.with))
    }
}

/// `, type2, type3`, or nothing.
fn also(types: &[Ident]) -> String {
    types.iter().map(|t| format!(", {t}")).collect()
}

/// ` WHERE filter`, or nothing.
fn on_where(filter: &Option<Expr>) -> String {
    filter
        .as_ref()
        .map_or_else(String::new, |f| format!(" WHERE {f}"))
}

fn float(x: f64) -> String {
    Literal::Float(x).to_string()
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statement::CreateAttribute { name, ty, on } => {
                write!(f, "CREATE ATTRIBUTE {name} {ty}")?;
                if let Some(e) = on {
                    write!(f, " ON {e}")?;
                }
                Ok(())
            }
            Statement::CreateFeature {
                name,
                event,
                also_on,
                filter,
                func,
                field,
                arg,
                half_life,
                prior,
                by,
            } => {
                write!(
                    f,
                    "CREATE FEATURE {name} ON {event}{}{} AS {}(",
                    also(also_on),
                    on_where(filter),
                    func.keyword()
                )?;
                if let Some(field) = field {
                    write!(f, "{field}")?;
                }
                if let Some(arg) = arg {
                    write!(f, "{arg}")?;
                }
                f.write_str(")")?;
                if let Some(k) = by {
                    write!(f, " BY {}", k.field)?;
                }
                if let Some(h) = half_life {
                    write!(f, " HALF_LIFE {h}")?;
                }
                if let Some((a, b)) = prior {
                    write!(f, " PRIOR ({}, {})", float(*a), float(*b))?;
                }
                if let Some(k) = by {
                    write!(f, " TOP {}", k.top)?;
                }
                Ok(())
            }
            Statement::CreateWindow {
                name,
                event,
                also_on,
                filter,
                field,
                arg,
                bucket,
                retain,
            } => {
                write!(
                    f,
                    "CREATE WINDOW {name} ON {event}{}{}",
                    also(also_on),
                    on_where(filter)
                )?;
                if let Some(field) = field {
                    write!(f, " OF {field}")?;
                }
                if let Some(arg) = arg {
                    write!(f, " OF {arg}")?;
                }
                write!(f, " BUCKET {bucket} RETAIN {retain}")
            }
            Statement::CreateVector {
                name,
                event,
                also_on,
                filter,
                dim,
                spec,
            } => {
                write!(
                    f,
                    "CREATE VECTOR {name} ON {event}{}{} AS ",
                    also(also_on),
                    on_where(filter)
                )?;
                match spec {
                    VectorSpec::Ewma { field, half_life } => {
                        write!(f, "EWMA({field}) DIM {dim} HALF_LIFE {half_life}")
                    }
                    VectorSpec::Sgd {
                        item,
                        label,
                        learning_rate,
                        l2,
                    } => write!(
                        f,
                        "SGD({item}, {label}) DIM {dim} LEARNING_RATE {} L2 {}",
                        float(*learning_rate),
                        float(*l2)
                    ),
                }
            }
            Statement::CreateSegment { name, predicate } => {
                write!(f, "CREATE SEGMENT {name} AS {predicate}")
            }
            Statement::CreateOrReplace(inner) => {
                let text = inner.to_string();
                let item = text.strip_prefix("CREATE ").unwrap_or(&text);
                write!(f, "CREATE OR REPLACE {item}")
            }
            Statement::Alter {
                kind,
                name,
                setting,
            } => write!(f, "ALTER {} {name} SET {setting}", kind.keyword()),
            Statement::SetUserTtl { ttl } => write!(f, "ALTER DATABASE SET USER TTL {ttl}"),
            Statement::CreateIfNotExists(inner) => {
                // `CREATE KIND name …` becomes `CREATE KIND IF NOT EXISTS name …`.
                let text = inner.to_string();
                let mut words = text.splitn(3, ' ');
                let (create, kind, rest) = (
                    words.next().unwrap_or_default(),
                    words.next().unwrap_or_default(),
                    words.next().unwrap_or_default(),
                );
                write!(f, "{create} {kind} IF NOT EXISTS {rest}")
            }
            Statement::Drop {
                kind,
                name,
                if_exists,
            } => {
                let ie = if *if_exists { "IF EXISTS " } else { "" };
                write!(f, "DROP {} {ie}{name}", kind.keyword())
            }
            Statement::Show { kind } => write!(f, "SHOW {}S", kind.keyword()),
            Statement::Describe { name } => write!(f, "DESCRIBE {name}"),
            Statement::Insert {
                event,
                columns,
                rows,
            } => {
                write!(f, "INSERT INTO {event} (")?;
                comma_list(f, columns)?;
                f.write_str(") VALUES ")?;
                for (i, row) in rows.iter().enumerate() {
                    f.write_str(if i > 0 { ", (" } else { "(" })?;
                    comma_list(f, row)?;
                    f.write_str(")")?;
                }
                Ok(())
            }
            Statement::Update {
                assignments,
                selection,
            } => {
                f.write_str("UPDATE users SET ")?;
                for (i, (name, value)) in assignments.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{name} = {value}")?;
                }
                write!(f, " WHERE {selection}")
            }
            Statement::DeleteUser { user, .. } => {
                write!(f, "DELETE USER {}", Literal::String(user.clone()))
            }
            Statement::Delete { selection } => write!(f, "DELETE FROM users WHERE {selection}"),
            Statement::Select(s) => write!(f, "{s}"),
            Statement::Explain(s) => write!(f, "EXPLAIN {s}"),
            Statement::Cluster(c) => write!(f, "{c}"),
            Statement::CreateSegments { name, cluster } => {
                write!(f, "CREATE SEGMENTS {name} FROM {cluster}")
            }
            Statement::DropSegments { name, if_exists } => {
                let ie = if *if_exists { "IF EXISTS " } else { "" };
                write!(f, "DROP SEGMENTS {ie}{name}")
            }
            Statement::Vacuum => f.write_str("VACUUM"),
            Statement::SetHistory { horizon } => {
                write!(f, "ALTER DATABASE SET HISTORY {horizon}")
            }
            Statement::ShowHistory => f.write_str("SHOW HISTORY"),
            Statement::CreateEvent { name, fields } => {
                write!(f, "CREATE EVENT {name} (")?;
                comma_list(f, fields)?;
                f.write_str(")")
            }
            Statement::AlterEventAddField { event, field } => {
                write!(f, "ALTER EVENT {event} ADD FIELD {field}")
            }
            Statement::DropEvent { name, if_exists } => {
                let ie = if *if_exists { "IF EXISTS " } else { "" };
                write!(f, "DROP EVENT {ie}{name}")
            }
            Statement::ShowEvents => f.write_str("SHOW EVENTS"),
            Statement::Buckets {
                window,
                user,
                span,
                fill,
                as_of,
            } => {
                write!(f, "BUCKETS {window} FOR {user} OVER {span}")?;
                if *fill {
                    f.write_str(" FILL ZEROS")?;
                }
                if let Some(t) = as_of {
                    write!(f, " AS OF {t}")?;
                }
                Ok(())
            }
            Statement::DescribeEvent { name } => write!(f, "DESCRIBE EVENT {name}"),
            Statement::CreateIndex {
                name,
                table,
                method,
                vector,
                with,
            } => write!(
                f,
                "CREATE INDEX {name} ON {table} USING {method} ({vector}){}",
                with_list(with)
            ),
            Statement::DropIndex { name, if_exists } => {
                let ie = if *if_exists { "IF EXISTS " } else { "" };
                write!(f, "DROP INDEX {ie}{name}")
            }
            Statement::ShowIndexes => f.write_str("SHOW INDEXES"),
            Statement::AnalyzeIndex { name, with } => {
                write!(f, "ANALYZE INDEX {name}{}", with_list(with))
            }
        }
    }
}
