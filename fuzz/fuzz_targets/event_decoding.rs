//! Arbitrary bytes through both event decodings, JSON text and the binary
//! batches of a cluster's log, and planning against a catalog that binds
//! every kind of definition: never a panic, only typed errors; a batch that
//! decodes writes back as what it read.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use profiledb_storage::catalog::{Bindings, Catalog};
use profiledb_storage::event::{BatchWriter, decode_batch, events_from_json, plan};
use profiledb_storage::{AttrType, Definition, FeatureKind, VectorRule};

fn bindings() -> &'static Bindings {
    static B: OnceLock<Bindings> = OnceLock::new();
    B.get_or_init(|| {
        let mut c = Catalog::default();
        let defs = [
            Definition::Attribute {
                name: "region".into(),
                ty: AttrType::String,
                event_type: Some("e".into()),
            },
            Definition::Attribute {
                name: "tags".into(),
                ty: AttrType::Tags,
                event_type: Some("e".into()),
            },
            Definition::Feature {
                name: "n".into(),
                event_type: "e".into(),
                field: None,
                kind: FeatureKind::Count,
            },
            Definition::Feature {
                name: "s".into(),
                event_type: "e".into(),
                field: Some("x".into()),
                kind: FeatureKind::DecayedAvg { half_life_ms: 1000 },
            },
            Definition::Feature {
                name: "b".into(),
                event_type: "e".into(),
                field: Some("y".into()),
                kind: FeatureKind::Beta {
                    half_life_ms: 1000,
                    prior_a: 1.0,
                    prior_b: 1.0,
                },
            },
            Definition::Window {
                name: "w".into(),
                event_type: "e".into(),
                field: Some("x".into()),
                bucket_ms: 60_000,
                retain_ms: 600_000,
            },
            Definition::Vector {
                name: "v".into(),
                event_type: "e".into(),
                dim: 3,
                rule: VectorRule::Ewma {
                    field: "vec".into(),
                    half_life_ms: 1000,
                },
            },
            Definition::Vector {
                name: "p".into(),
                event_type: "e".into(),
                dim: 3,
                rule: VectorRule::Sgd {
                    item_field: "vec".into(),
                    label_field: "y".into(),
                    learning_rate: 0.1,
                    l2: 0.0,
                },
            },
        ];
        for d in defs {
            let _ = c.define(d);
        }
        Bindings::new(c)
    })
}

fn batch(events: &[profiledb_storage::Event]) -> Vec<u8> {
    let mut w = BatchWriter::new();
    for ev in events {
        w.push(ev);
    }
    w.finish()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(events) = decode_batch(data) {
        for ev in &events {
            let _ = plan(bindings(), ev);
        }
        let written = batch(&events);
        let again = decode_batch(&written).expect("a batch written decodes");
        assert_eq!(batch(&again), written);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(events) = events_from_json(text) {
        for ev in &events {
            let _ = plan(bindings(), ev);
        }
    }
});
