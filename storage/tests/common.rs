//! Shared fixtures: a schema that uses every kind of definition.
#![allow(dead_code)]

use profiledb_storage::{
    AttrType, Definition, EngineOptions, FeatureKind, Result, RocksEngine, VectorRule,
};

pub const DAY: i64 = 86_400_000;
pub const HOUR: i64 = 3_600_000;
/// 2025-11-01T00:00:00Z.
pub const T0: i64 = 1_761_955_200_000;

pub fn open(dir: &std::path::Path) -> Result<RocksEngine> {
    RocksEngine::open(EngineOptions::new(dir))
}

/// The vector the similarity tests rank by: `taste`, the ewma of field `v`
/// of `view` events, of dimension `dim`, with a one-day half-life.
pub fn taste(dim: usize) -> Definition {
    Definition::Vector {
        name: "taste".into(),
        event_type: "view".into(),
        dim: dim as u32,
        rule: VectorRule::Ewma {
            field: "v".into(),
            half_life_ms: DAY,
        },
    }
}

pub fn feature(name: &str, event: &str, field: Option<&str>, kind: FeatureKind) -> Definition {
    Definition::Feature {
        name: name.into(),
        event_type: event.into(),
        field: field.map(Into::into),
        kind,
    }
}

/// Defines one of everything: attributes, every feature kind, two windows and two vectors.
pub fn full_schema<K: profiledb_storage::kv::Kv>(e: &profiledb_storage::Engine<K>) -> Result<()> {
    e.define(Definition::Attribute {
        name: "age".into(),
        ty: AttrType::Int,
        event_type: None,
    })?;
    e.define(Definition::Attribute {
        name: "region".into(),
        ty: AttrType::String,
        event_type: Some("signup".into()),
    })?;
    e.define(feature("purchases", "purchase", None, FeatureKind::Count))?;
    e.define(feature(
        "revenue",
        "purchase",
        Some("amount"),
        FeatureKind::Sum,
    ))?;
    e.define(feature(
        "smallest",
        "purchase",
        Some("amount"),
        FeatureKind::Min,
    ))?;
    e.define(feature(
        "largest",
        "purchase",
        Some("amount"),
        FeatureKind::Max,
    ))?;
    e.define(feature(
        "latest",
        "purchase",
        Some("amount"),
        FeatureKind::Last,
    ))?;
    e.define(feature(
        "visits",
        "view",
        None,
        FeatureKind::DecayedCount {
            half_life_ms: 7 * DAY,
        },
    ))?;
    e.define(feature(
        "spend_7d",
        "purchase",
        Some("amount"),
        FeatureKind::DecayedSum {
            half_life_ms: 7 * DAY,
        },
    ))?;
    e.define(feature(
        "basket",
        "purchase",
        Some("amount"),
        FeatureKind::DecayedAvg {
            half_life_ms: 30 * DAY,
        },
    ))?;
    e.define(feature(
        "ctr",
        "impression",
        Some("clicked"),
        FeatureKind::Beta {
            half_life_ms: 14 * DAY,
            prior_a: 1.0,
            prior_b: 20.0,
        },
    ))?;
    e.define(Definition::Window {
        name: "views".into(),
        event_type: "view".into(),
        field: None,
        bucket_ms: HOUR,
        retain_ms: 30 * DAY,
    })?;
    e.define(Definition::Window {
        name: "spend".into(),
        event_type: "purchase".into(),
        field: Some("amount".into()),
        bucket_ms: DAY,
        retain_ms: 36_500 * DAY, // Tests use fixed past times; keep them clear of retention.
    })?;
    e.define(Definition::Vector {
        name: "taste".into(),
        event_type: "view".into(),
        dim: 4,
        rule: VectorRule::Ewma {
            field: "item_vec".into(),
            half_life_ms: 14 * DAY,
        },
    })?;
    e.define(Definition::Vector {
        name: "pref".into(),
        event_type: "impression".into(),
        dim: 4,
        rule: VectorRule::Sgd {
            item_field: "item_vec".into(),
            label_field: "clicked".into(),
            learning_rate: 0.05,
            l2: 1e-4,
        },
    })?;
    Ok(())
}

/// Runs test `name` of this test binary alone, as a child process with
/// `env` set, its standard output piped: a writer to kill at a chosen point.
pub fn spawn_test(
    name: &str,
    env: &[(&str, &str)],
) -> std::io::Result<(std::process::Child, std::process::ChildStdout)> {
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no stdout"))?;
    Ok((child, stdout))
}

/// Reads the child's output until a line ends with `word` (the test harness
/// writes the test's name before the child's first line, on the same line).
pub fn wait_for(stdout: std::process::ChildStdout, word: &str) -> std::io::Result<()> {
    use std::io::BufRead;
    for line in std::io::BufReader::new(stdout).lines() {
        if line?.ends_with(word) {
            return Ok(());
        }
    }
    Err(std::io::Error::other(format!(
        "the child ended before '{word}'"
    )))
}

pub fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-12)
}
