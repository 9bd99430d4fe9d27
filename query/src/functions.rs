//! The function table: every function of the language, with its arity and
//! signature, in one place. Binding looks a call up here, checks its arity
//! here, and draws its did-you-mean suggestions from here, so a function
//! cannot be half-registered (callable but never suggested, or suggested
//! with the wrong signature).

use profiledb_storage::Metric;

use crate::ast::FunctionArg;
use crate::bind::{AggFunc, MathFunc, WindowFunc};

/// What a function does, for the binder to dispatch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A window aggregate over a span: `window_sum(clicks, '7d')`.
    Window(WindowFunc),
    /// A similarity of the row's vector to a target.
    Similarity(Metric),
    /// The nearest centroid of a stored clustering.
    NearestCluster,
    /// A centroid of a segment's vectors: only a target of a similarity.
    Centroid,
    /// The nearest of centroids written out, as a vector literal each.
    NearestCentroid,
    /// A seeded 64-bit hash of a value.
    Hash,
    /// A window's latest span against its own baseline.
    ZScore,
    /// Absolute value.
    Abs,
    /// The time the query reads as of, epoch ms.
    Now,
    /// The first non-NULL argument.
    Coalesce,
    /// A keyed feature's keys of the largest values.
    TopKeys,
    /// A scalar function of numbers.
    Math(MathFunc),
    /// An aggregate over users (select list and ORDER BY of a query over all
    /// users); `count(*)` is told apart by its argument.
    Aggregate(AggFunc),
}

/// How many arguments a function takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arity {
    /// Exactly this many.
    Exactly(usize),
    /// At least this many.
    AtLeast(usize),
}

/// One function of the language.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Function {
    /// Its name, lower case (calls are case-insensitive).
    pub name: &'static str,
    pub kind: Kind,
    pub arity: Arity,
    /// How it is called, for error messages.
    pub signature: &'static str,
}

const fn f(name: &'static str, kind: Kind, arity: Arity, signature: &'static str) -> Function {
    Function {
        name,
        kind,
        arity,
        signature,
    }
}

/// Every function.
pub(crate) const FUNCTIONS: &[Function] = &[
    f(
        "window_count",
        Kind::Window(WindowFunc::Count),
        Arity::Exactly(2),
        "window_count(window, duration)",
    ),
    f(
        "window_sum",
        Kind::Window(WindowFunc::Sum),
        Arity::Exactly(2),
        "window_sum(window, duration)",
    ),
    f(
        "window_avg",
        Kind::Window(WindowFunc::Avg),
        Arity::Exactly(2),
        "window_avg(window, duration)",
    ),
    f(
        "window_min",
        Kind::Window(WindowFunc::Min),
        Arity::Exactly(2),
        "window_min(window, duration)",
    ),
    f(
        "window_max",
        Kind::Window(WindowFunc::Max),
        Arity::Exactly(2),
        "window_max(window, duration)",
    ),
    f(
        "window_stddev",
        Kind::Window(WindowFunc::Stddev),
        Arity::Exactly(2),
        "window_stddev(window, duration)",
    ),
    f(
        "cosine",
        Kind::Similarity(Metric::Cosine),
        Arity::Exactly(2),
        "cosine(vector, user id | [vector] | centroid(vector, segment))",
    ),
    f(
        "dot",
        Kind::Similarity(Metric::Dot),
        Arity::Exactly(2),
        "dot(vector, user id | [vector] | centroid(vector, segment))",
    ),
    f(
        "l2_distance",
        Kind::Similarity(Metric::L2),
        Arity::Exactly(2),
        "l2_distance(vector, user id | [vector] | centroid(vector, segment))",
    ),
    f(
        "centroid",
        Kind::Centroid,
        Arity::Exactly(2),
        "centroid(vector, segment)",
    ),
    f(
        "nearest_cluster",
        Kind::NearestCluster,
        Arity::Exactly(1),
        "nearest_cluster(segment group)",
    ),
    f(
        "nearest_centroid",
        Kind::NearestCentroid,
        Arity::Exactly(2),
        "nearest_centroid(vector, [[centroid], …])",
    ),
    f("hash", Kind::Hash, Arity::AtLeast(1), "hash(value[, seed])"),
    f(
        "zscore",
        Kind::ZScore,
        Arity::Exactly(3),
        "zscore(window, current, baseline)",
    ),
    f("abs", Kind::Abs, Arity::Exactly(1), "abs(number)"),
    f(
        "round",
        Kind::Math(MathFunc::Round),
        Arity::AtLeast(1),
        "round(number[, digits])",
    ),
    f(
        "floor",
        Kind::Math(MathFunc::Floor),
        Arity::Exactly(1),
        "floor(number)",
    ),
    f(
        "ceil",
        Kind::Math(MathFunc::Ceil),
        Arity::Exactly(1),
        "ceil(number)",
    ),
    f(
        "ln",
        Kind::Math(MathFunc::Ln),
        Arity::Exactly(1),
        "ln(number)",
    ),
    f(
        "exp",
        Kind::Math(MathFunc::Exp),
        Arity::Exactly(1),
        "exp(number)",
    ),
    f(
        "sqrt",
        Kind::Math(MathFunc::Sqrt),
        Arity::Exactly(1),
        "sqrt(number)",
    ),
    f(
        "pow",
        Kind::Math(MathFunc::Pow),
        Arity::Exactly(2),
        "pow(base, exponent)",
    ),
    f(
        "power",
        Kind::Math(MathFunc::Pow),
        Arity::Exactly(2),
        "power(base, exponent)",
    ),
    f(
        "greatest",
        Kind::Math(MathFunc::Greatest),
        Arity::AtLeast(1),
        "greatest(x, y, …)",
    ),
    f(
        "least",
        Kind::Math(MathFunc::Least),
        Arity::AtLeast(1),
        "least(x, y, …)",
    ),
    f(
        "top_keys",
        Kind::TopKeys,
        Arity::Exactly(2),
        "top_keys(keyed_feature, n)",
    ),
    f("now", Kind::Now, Arity::Exactly(0), "now()"),
    f(
        "coalesce",
        Kind::Coalesce,
        Arity::AtLeast(1),
        "coalesce(value, …)",
    ),
    f(
        "count",
        Kind::Aggregate(AggFunc::Count),
        Arity::Exactly(1),
        "count(*) or count(expression)",
    ),
    f(
        "sum",
        Kind::Aggregate(AggFunc::Sum),
        Arity::Exactly(1),
        "sum(expression)",
    ),
    f(
        "avg",
        Kind::Aggregate(AggFunc::Avg),
        Arity::Exactly(1),
        "avg(expression)",
    ),
    f(
        "min",
        Kind::Aggregate(AggFunc::Min),
        Arity::Exactly(1),
        "min(expression)",
    ),
    f(
        "max",
        Kind::Aggregate(AggFunc::Max),
        Arity::Exactly(1),
        "max(expression)",
    ),
    f(
        "stddev",
        Kind::Aggregate(AggFunc::Stddev),
        Arity::Exactly(1),
        "stddev(expression)",
    ),
    f(
        "stddev_samp",
        Kind::Aggregate(AggFunc::Stddev),
        Arity::Exactly(1),
        "stddev_samp(expression)",
    ),
    f(
        "stddev_pop",
        Kind::Aggregate(AggFunc::StddevPop),
        Arity::Exactly(1),
        "stddev_pop(expression)",
    ),
    f(
        "variance",
        Kind::Aggregate(AggFunc::Variance),
        Arity::Exactly(1),
        "variance(expression)",
    ),
    f(
        "var_samp",
        Kind::Aggregate(AggFunc::Variance),
        Arity::Exactly(1),
        "var_samp(expression)",
    ),
    f(
        "var_pop",
        Kind::Aggregate(AggFunc::VarPop),
        Arity::Exactly(1),
        "var_pop(expression)",
    ),
    f(
        "median",
        Kind::Aggregate(AggFunc::Median),
        Arity::Exactly(1),
        "median(expression)",
    ),
    f(
        "percentile",
        Kind::Aggregate(AggFunc::Percentile),
        Arity::Exactly(2),
        "percentile(expression, fraction)",
    ),
];

/// The function called `name` (any case).
pub(crate) fn lookup(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

/// Every function's name, for suggestions.
pub(crate) fn names() -> impl Iterator<Item = &'static str> {
    FUNCTIONS.iter().map(|f| f.name)
}

/// The aggregate `name(args)` denotes, if any.
pub(crate) fn aggregate(name: &str, args: &[FunctionArg]) -> Option<AggFunc> {
    match lookup(name)?.kind {
        Kind::Aggregate(AggFunc::Count) if matches!(args, [FunctionArg::Star]) => {
            Some(AggFunc::CountStar)
        }
        Kind::Aggregate(AggFunc::Count) if matches!(args, [FunctionArg::Distinct(_)]) => {
            Some(AggFunc::CountDistinct)
        }
        Kind::Aggregate(a) => Some(a),
        _ => None,
    }
}

impl Function {
    /// An error message when `n` arguments do not fit, else `None`.
    pub(crate) fn arity_error(&self, n: usize) -> Option<String> {
        let (fits, count) = match self.arity {
            Arity::Exactly(k) => (n == k, k.to_string()),
            Arity::AtLeast(k) => (n >= k, format!("at least {k}")),
        };
        let plural = !matches!(self.arity, Arity::Exactly(1) | Arity::AtLeast(1));
        (!fits).then(|| {
            format!(
                "{} takes {count} argument{}: {}",
                self.name,
                if plural { "s" } else { "" },
                self.signature
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_lower_case() {
        let mut seen = std::collections::HashSet::new();
        for f in FUNCTIONS {
            assert!(seen.insert(f.name), "{} twice", f.name);
            assert_eq!(f.name, f.name.to_ascii_lowercase());
            assert!(f.signature.starts_with(f.name), "{}", f.signature);
        }
    }
}
