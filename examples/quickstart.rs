//! A small tour of the library over a local database directory: define a schema,
//! ingest events (some late), and read profiles as of different times.
//!
//! `cargo run --release --example quickstart [DIR]` (default: a temporary directory).

use profiledb::{
    AttrType, Db, Definition, Event, FeatureKind, Value, VectorRule, format_timestamp,
};

const DAY: i64 = 86_400_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| tmp.path().to_path_buf(), Into::into);
    let db = Db::open(&dir)?;
    if db.catalog().features.is_empty() {
        define(&db)?;
    }
    let t0 = profiledb::parse_timestamp("2026-11-01T10:00:00Z")?;
    let mut events = Vec::new();
    for (user, day, amount, vec) in [
        ("alice", 0, 35.0, [1.0f32, 0.0, 0.0]),
        ("alice", 3, 120.0, [0.8, 0.2, 0.0]),
        ("bob", 1, 12.5, [0.0, 1.0, 0.0]),
        ("bob", 6, 18.0, [0.0, 0.6, 0.4]),
        // A late event: it arrives last but happened first; results do not depend on it.
        ("alice", -2, 60.0, [1.0, 0.0, 0.0]),
    ] {
        let ts = t0 + day * DAY;
        events.push(Event::new(user, "purchase", ts).with("amount", amount));
        events.push(Event::new(user, "view", ts).with("item_vec", vec.to_vec()));
    }
    events.push(Event::new("alice", "signup", t0).with("region", "north"));
    events.push(Event::new("bob", "signup", t0).with("region", "south"));
    let n = db.ingest(&events)?;
    println!("ingested {n} events into {}", dir.display());

    for as_of in [t0 + 7 * DAY, t0 + 30 * DAY] {
        println!("\nprofiles as of {}", format_timestamp(as_of));
        for user in ["alice", "bob"] {
            let Some(p) = db.profile(user, as_of)? else {
                continue;
            };
            let fields: Vec<String> = p
                .attributes
                .iter()
                .chain(&p.features)
                .chain(&p.vectors)
                .map(|(name, v)| format!("{name}={}", show(v)))
                .collect();
            println!("  {user:<6} {}", fields.join("  "));
        }
    }
    Ok(())
}

fn define(db: &Db) -> profiledb::Result<()> {
    db.define(Definition::Attribute {
        name: "region".into(),
        ty: AttrType::String,
        event_type: Some("signup".into()),
    })?;
    let feature = |name: &str, field: Option<&str>, kind| Definition::Feature {
        name: name.into(),
        event_type: "purchase".into(),
        field: field.map(Into::into),
        kind,
    };
    db.define(feature("purchases", None, FeatureKind::Count))?;
    db.define(feature("revenue", Some("amount"), FeatureKind::Sum))?;
    db.define(feature(
        "spend_7d",
        Some("amount"),
        FeatureKind::DecayedSum {
            half_life_ms: 7 * DAY,
        },
    ))?;
    db.define(Definition::Vector {
        name: "taste".into(),
        event_type: "view".into(),
        dim: 3,
        rule: VectorRule::Ewma {
            field: "item_vec".into(),
            half_life_ms: 14 * DAY,
        },
    })?;
    Ok(())
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Float(f) => format!("{f:.2}"),
        Value::Int(i) => i.to_string(),
        Value::String(s) => s.clone(),
        Value::Vector(v) => format!("{:.2?}", v),
        other => format!("{other:?}"),
    }
}
