//! Partitioning users across a cluster: every user belongs to one of P
//! partitions by a hash of its id that ProfileDB computes itself, so that
//! whatever publishes an event (the router, an application, a replayed
//! export) sends it to the partition the nodes consume it from.
//!
//! The hash is XXH3-64 of the id's UTF-8 bytes (seed 0), modulo P. It is
//! part of the on-disk and on-the-wire format: it never changes, and its
//! values are pinned by tests against an independent implementation.
//! `xxhash-rust` is the maintained pure-Rust XXH3; XXH3 is fast on short
//! keys and spreads them evenly in its low bits, which the modulo keeps.
//!
//! Who answers for which partition ([`membership`]) and the partitions a
//! node answers for in a query ([`shard::Shard`]). With the
//! `cluster` feature: the log a cluster runs on ([`log::Log`], on NATS
//! JetStream in [`jetstream`]), the node that applies it
//! ([`node::Node`]), and the peers a node asks for the rest of a query
//! ([`peers::HttpPeers`]).

use std::num::NonZeroU32;

#[cfg(feature = "cluster")]
pub mod jetstream;
#[cfg(feature = "cluster")]
pub mod log;
pub mod membership;
#[cfg(feature = "cluster")]
pub mod node;
#[cfg(feature = "cluster")]
pub mod peers;
pub mod shard;

/// An event as the log carries it: its JSON object (as `POST /v1/events`
/// takes it), the id the log deduplicates it by (its `event_id`, when it has
/// one), and its partition among `partitions`.
#[cfg(feature = "cluster")]
pub fn log_message(event: &crate::Event, partitions: NonZeroU32) -> (u32, Option<String>, Vec<u8>) {
    // An integer id is the same id as its decimal string.
    let id = event.field("event_id").and_then(|v| match v {
        crate::Value::String(s) => Some(s.clone()),
        crate::Value::Int(i) => Some(i.to_string()),
        _ => None,
    });
    // Serializing to memory cannot fail: keys are strings, and a float that
    // is not finite is written as null.
    let payload = serde_json::to_vec(&crate::json::JsonEvent(event)).unwrap_or_default();
    (partition_of(&event.user, partitions), id, payload)
}

/// The log position under which a node stores the last of the cluster's
/// statements it applied: a partition number no cluster has (partitions
/// number from 0 to fewer than `u32::MAX`).
pub const STATEMENTS: u32 = u32::MAX;

/// A statement as the log carries it: a script of schema or data changes,
/// and the values of its parameters (`$1`, ...), as JSON.
#[cfg(feature = "cluster")]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Statement {
    /// The script.
    pub sql: String,
    /// Its parameters' values.
    #[serde(default)]
    pub params: Vec<serde_json::Value>,
}

/// What a partition's message holds: an event (a JSON object with a
/// `user`), or a marker (`{"statements": S}`) placing the cluster's
/// statements up to sequence number `S` of the statements' log among the
/// partition's events: every node applies them after the events before the
/// marker and before those after it, in every partition.
#[cfg(feature = "cluster")]
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// An event.
    Event(crate::Event),
    /// The statements up to this sequence number go here.
    Statements(u64),
    /// Neither: not JSON, or not an event (the log holds it; it is skipped).
    Unreadable,
}

#[cfg(feature = "cluster")]
impl Entry {
    /// Decodes a message.
    pub fn decode(payload: &[u8]) -> Entry {
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(payload) else {
            return Entry::Unreadable;
        };
        if let Some(obj) = json.as_object()
            && !obj.contains_key("user")
            && let Some(through) = obj.get("statements")
        {
            return through
                .as_u64()
                .map_or(Entry::Unreadable, Entry::Statements);
        }
        crate::Event::from_json(&json).map_or(Entry::Unreadable, Entry::Event)
    }

    /// The message of a marker for the statements up to `through`.
    pub fn marker(through: u64) -> Vec<u8> {
        format!("{{\"statements\":{through}}}").into_bytes()
    }

    /// The message id of the marker for `through` in `partition`: whoever
    /// publishes it (the router that published the statement, or a node
    /// completing what a router left undone), the log keeps one.
    pub fn marker_id(through: u64, partition: u32) -> String {
        format!("statements.{through}.{partition}")
    }
}

/// Publishes `statement` to the log's statements (deduplicated by `id`)
/// and marks it in each of `partitions`; answers its sequence number, and
/// whether marking failed. A marking cut short is finished by the nodes
/// ([`node`]): once the log has the statement, it will be applied.
///
/// # Errors
/// The log did not take the statement.
#[cfg(feature = "cluster")]
pub async fn publish_statement<L: log::Log>(
    log: &L,
    partitions: NonZeroU32,
    id: Option<&str>,
    statement: &Statement,
) -> Result<(u64, Result<(), log::LogError>), log::LogError> {
    let payload = serde_json::to_vec(statement)
        .map_err(|e| log::LogError(format!("encoding a statement: {e}")))?;
    let (seq, _) = log.publish_statement(id, payload).await?;
    let markers = (0..partitions.get())
        .map(|p| (p, Some(Entry::marker_id(seq, p)), Entry::marker(seq)))
        .collect();
    let marked = log.publish_all(markers).await.map(drop);
    Ok((seq, marked))
}

/// Partitions a cluster is made with unless told otherwise: many more than
/// the nodes, so that ownership moves a few partitions at a time.
pub const DEFAULT_PARTITIONS: u32 = 64;

/// The partition of `user` among `partitions`, from 0.
pub fn partition_of(user: &str, partitions: NonZeroU32) -> u32 {
    let hash = xxhash_rust::xxh3::xxh3_64(user.as_bytes());
    // The remainder is below `partitions`, so it fits a u32.
    u32::try_from(hash % u64::from(partitions.get())).unwrap_or(0)
}

/// The nodes that hold `partition` among `nodes`, owner first, then up to
/// `standbys` standbys: the nodes ranked by XXH3-64 of the partition and the
/// node's name (rendezvous hashing). Every node computes the same answer
/// from the same set of live nodes, and when a node joins or leaves only the
/// partitions it ranks first (or among the standbys) of change hands.
pub fn assignment<'a>(partition: u32, nodes: &[&'a str], standbys: usize) -> Vec<&'a str> {
    let score = |node: &str| {
        let mut key = partition.to_be_bytes().to_vec();
        key.extend_from_slice(node.as_bytes());
        xxhash_rust::xxh3::xxh3_64(&key)
    };
    let mut ranked: Vec<(u64, &'a str)> = nodes.iter().map(|n| (score(n), *n)).collect();
    // Highest score first; names break (astronomically unlikely) ties.
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    ranked.dedup_by(|a, b| a.1 == b.1);
    ranked
        .into_iter()
        .take(standbys.saturating_add(1))
        .map(|(_, n)| n)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The assignment by brute force: every node's score computed here,
    /// the largest first.
    fn naive(partition: u32, nodes: &[&str], standbys: usize) -> Vec<String> {
        let mut scored: Vec<(u64, String)> = nodes
            .iter()
            .map(|n| {
                let mut key = Vec::new();
                key.extend_from_slice(&partition.to_be_bytes());
                key.extend_from_slice(n.as_bytes());
                (xxhash_rust::xxh3::xxh3_64(&key), (*n).to_owned())
            })
            .collect();
        scored.sort();
        scored.reverse();
        scored
            .into_iter()
            .take(standbys + 1)
            .map(|(_, n)| n)
            .collect()
    }

    #[test]
    fn assignments_rank_nodes_by_their_score() {
        let nodes = ["a", "b", "c", "d", "e"];
        for p in 0..64 {
            for standbys in 0..6 {
                assert_eq!(assignment(p, &nodes, standbys), naive(p, &nodes, standbys));
            }
        }
        assert!(assignment(3, &[], 1).is_empty());
        assert_eq!(assignment(3, &["a", "a"], 1), vec!["a"]);
    }

    #[test]
    fn a_node_leaving_moves_only_its_own_partitions() {
        let all = ["n1", "n2", "n3", "n4"];
        let without = ["n1", "n2", "n4"];
        let mut owned = std::collections::HashMap::new();
        for p in 0..256 {
            let before = assignment(p, &all, 0)[0];
            let after = assignment(p, &without, 0)[0];
            if before != "n3" {
                assert_eq!(before, after, "partition {p} moved though its owner stayed");
            }
            *owned.entry(before).or_insert(0) += 1;
        }
        // Each of four nodes owns about a quarter of 256.
        assert!(owned.values().all(|&n| (40..90).contains(&n)), "{owned:?}");
    }

    fn p(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("non-zero")
    }

    /// Values from Python's `xxhash` package (`xxh3_64_intdigest`), an
    /// implementation that shares no code with this one.
    #[test]
    fn partitions_are_pinned() {
        let cases: [(&str, u64); 5] = [
            ("", 3_244_421_341_483_603_138),
            ("u1", 11_367_126_444_297_510_385),
            ("user0000042", 11_543_566_169_428_857_455),
            ("ümlaut", 6_982_399_698_315_512_112),
            (&"a".repeat(300), 13_966_073_120_003_161_633),
        ];
        for (user, hash) in &cases {
            for n in [1u32, 7, 64, 1024] {
                assert_eq!(
                    u64::from(partition_of(user, p(n))),
                    hash % u64::from(n),
                    "{user:?} of {n}"
                );
            }
        }
        assert_eq!(partition_of("u1", p(64)), 49);
        assert_eq!(partition_of("user0000042", p(1024)), 623);
    }

    #[test]
    fn users_spread_evenly() {
        let n = 64u32;
        let mut counts = vec![0u32; n as usize];
        for i in 0..64_000 {
            counts[partition_of(&format!("user{i:07}"), p(n)) as usize] += 1;
        }
        // 1,000 expected each; a fair spread stays well inside ±20%.
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }
}
