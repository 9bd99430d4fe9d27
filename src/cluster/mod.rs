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
use profiledb_storage::event::BatchWriter;

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

/// Most events one message of the log carries.
pub const MESSAGE_EVENTS: usize = 1000;
/// About the most bytes one message of the log carries (NATS takes 1 MiB
/// by default).
pub const MESSAGE_BYTES: usize = 256 * 1024;

/// A message of events for the log ([`log_messages`]).
#[cfg(feature = "cluster")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Its partition.
    pub partition: u32,
    /// The id the log drops a repeat of it by.
    pub id: Option<String>,
    /// The events, in the binary form of
    /// [`profiledb_storage::event::BatchWriter`].
    pub payload: Vec<u8>,
    /// How many events it carries.
    pub events: usize,
}

/// The messages that carry `events` to the log: each partition's events,
/// in their order, in messages of up to [`MESSAGE_EVENTS`] events and about
/// [`MESSAGE_BYTES`]. A message's id, by which the log drops a repeat of it:
/// with a `request` key, the key, the partition and the message's place
/// among the partition's; otherwise, when every event in it has an
/// `event_id`, a hash of those ids (a request sent again gives the same
/// messages, and so the same ids); otherwise none. Nodes also drop an event
/// whose `event_id` they hold (while they keep history, within its horizon),
/// however it was sent.
#[cfg(feature = "cluster")]
pub fn log_messages(
    events: &[crate::Event],
    partitions: NonZeroU32,
    request: Option<&str>,
) -> Vec<Outgoing> {
    let mut by_partition: std::collections::BTreeMap<u32, Vec<&crate::Event>> =
        std::collections::BTreeMap::new();
    for ev in events {
        by_partition
            .entry(partition_of(&ev.user, partitions))
            .or_default()
            .push(ev);
    }
    let mut out = Vec::new();
    for (partition, events) in by_partition {
        let mut place = 0usize;
        let mut chunk: Vec<&crate::Event> = Vec::new();
        let mut batch = BatchWriter::new();
        let mut flush = |chunk: &mut Vec<&crate::Event>, batch: BatchWriter| {
            let id = match request {
                Some(key) => Some(format!("{key}/{partition}/{place}")),
                None => chunk
                    .iter()
                    .map(|ev| event_id(ev))
                    .collect::<Option<Vec<String>>>()
                    .map(|ids| {
                        let hash = xxhash_rust::xxh3::xxh3_128(ids.join("\0").as_bytes());
                        format!("ids/{hash:032x}")
                    }),
            };
            out.push(Outgoing {
                partition,
                id,
                payload: batch.finish(),
                events: chunk.len(),
            });
            chunk.clear();
            place += 1;
        };
        for ev in events {
            batch.push(ev);
            chunk.push(ev);
            if chunk.len() == MESSAGE_EVENTS || batch.len() >= MESSAGE_BYTES {
                flush(&mut chunk, std::mem::take(&mut batch));
            }
        }
        if !chunk.is_empty() {
            flush(&mut chunk, batch);
        }
    }
    out
}

/// An event's `event_id` (an integer id is the same id as its decimal string).
#[cfg(feature = "cluster")]
fn event_id(event: &crate::Event) -> Option<String> {
    event.field("event_id").and_then(|v| match v {
        crate::Value::String(s) => Some(s.clone()),
        crate::Value::Int(i) => Some(i.to_string()),
        _ => None,
    })
}

/// The log position under which a node stores the last of the cluster's
/// statements it applied: a partition number no cluster has (partitions
/// number from 0 to fewer than `u32::MAX`).
pub const STATEMENTS: u32 = u32::MAX;

/// The most partitions a cluster may have: partition numbers stay below
/// [`COVERED`], and a node runs a reader for each partition it follows.
pub const MAX_PARTITIONS: u32 = 1 << 16;

/// Log positions from this one up hold, for partition `p` at `COVERED +
/// p`, one more than the last of the cluster's statements whose changes to
/// users reached the node's copy of `p` (stored with every position of
/// `p`), for [`node`] to replay the others when it follows `p` again.
pub const COVERED: u32 = 1 << 31;

/// The log position under which a node stores the statement it is about
/// to apply, before it applies it: past [`STATEMENTS`]'s when the node was
/// killed while applying it, so that it applies that one again knowing
/// part of it may be applied already (a definition it finds made, or an
/// item it finds dropped, counts as applied).
pub const STARTED: u32 = u32::MAX - 1;

// Partition numbers and the records kept beside them never meet.
const _: () = assert!(
    MAX_PARTITIONS <= COVERED && COVERED + MAX_PARTITIONS < STARTED && STARTED < STATEMENTS
);

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
    /// For `CREATE SEGMENTS … FROM CLUSTER …`: the centroids of the one
    /// clustering over every node's users, made by the router before it
    /// publishes the statement, which each node defines as its segments
    /// (clustering on a node would see that node's users alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub centroids: Option<Vec<Vec<f32>>>,
    /// The router's clock when it published the statement (epoch ms):
    /// every node runs the statement as of this time (`UPDATE`'s write
    /// time, `now()`), so that they all change users alike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<i64>,
}

/// What the statements of a script that pick users by a predicate
/// (`UPDATE … WHERE`, `DELETE FROM users WHERE`) changed in one partition,
/// as each node that followed the partition when it applied the script
/// keeps it in the log ([`log::Log::put_effects`]). A node that follows the
/// partition only later replays those changes to those users at the
/// statement's marker ([`node`]), rather than evaluating the predicate
/// again under a schema that may have changed since: an item it names may
/// be dropped, or made anew under the same name.
#[cfg(feature = "cluster")]
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Effect {
    /// The place of each such statement in its script → the ids of the
    /// users of the partition it changed, sorted.
    pub changed: std::collections::BTreeMap<u32, Vec<String>>,
}

/// What a partition's message holds: events (a router's binary batch of
/// them, a JSON array of them, or one event's JSON object with a `user`),
/// or a marker (`{"statements": S}`) placing the cluster's
/// statements up to sequence number `S` of the statements' log among the
/// partition's events: every node applies them after the events before the
/// marker and before those after it, in every partition.
#[cfg(feature = "cluster")]
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// Events, and how many of the message's items were not events.
    Events(Vec<crate::Event>, u64),
    /// The statements up to this sequence number go here.
    Statements(u64),
    /// Neither: not JSON, or not an event (the log holds it; it is skipped).
    Unreadable,
}

#[cfg(feature = "cluster")]
impl Entry {
    /// Decodes a message.
    pub fn decode(payload: &[u8]) -> Entry {
        // What a router publishes.
        if profiledb_storage::event::is_batch(payload) {
            return profiledb_storage::event::decode_batch(payload)
                .map_or(Entry::Unreadable, |events| Entry::Events(events, 0));
        }
        let Ok(text) = std::str::from_utf8(payload) else {
            return Entry::Unreadable;
        };
        // Arrays of events, the messages ingest makes, by the server's own
        // decoder; an object is a marker or one event.
        if text.trim_start().starts_with('[') {
            return match crate::decode_each_event(text) {
                Ok(each) => {
                    let n = each.len();
                    let events: Vec<crate::Event> =
                        each.into_iter().filter_map(Result::ok).collect();
                    let unreadable = (n - events.len()) as u64;
                    Entry::Events(events, unreadable)
                }
                Err(_) => Entry::Unreadable,
            };
        }
        let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
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
        crate::Event::from_json(&json).map_or(Entry::Unreadable, |ev| Entry::Events(vec![ev], 0))
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

    /// An event with its fields in name order (JSON keeps no order).
    #[cfg(feature = "cluster")]
    fn sorted(mut ev: crate::Event) -> crate::Event {
        ev.fields.sort_by(|a, b| a.0.cmp(&b.0));
        ev
    }

    #[cfg(feature = "cluster")]
    fn ev(i: usize, id: bool) -> crate::Event {
        let ev =
            crate::Event::new(format!("u{}", i % 23), "view", 1_000 + i as i64).with("x", i as i64);
        if id {
            ev.with("event_id", format!("e{i}"))
        } else {
            ev
        }
    }

    #[cfg(feature = "cluster")]
    #[test]
    fn events_travel_in_messages_per_partition_in_order() {
        let events: Vec<crate::Event> = (0..2_500).map(|i| ev(i, true)).collect();
        let parts = p(4);
        let messages = log_messages(&events, parts, None);
        // Each partition's events, in order, the messages full but the last.
        let mut got: std::collections::BTreeMap<u32, Vec<crate::Event>> = Default::default();
        for m in &messages {
            let Entry::Events(evs, 0) = Entry::decode(&m.payload) else {
                panic!("not events: {m:?}")
            };
            assert_eq!(evs.len(), m.events);
            assert!(
                evs.iter()
                    .all(|e| partition_of(&e.user, parts) == m.partition)
            );
            got.entry(m.partition)
                .or_default()
                .extend(evs.into_iter().map(sorted));
        }
        for q in 0..4 {
            let want: Vec<crate::Event> = events
                .iter()
                .filter(|e| partition_of(&e.user, parts) == q)
                .cloned()
                .map(sorted)
                .collect();
            let have = got.remove(&q).unwrap_or_default();
            assert!(have == want, "partition {q}: the events differ");
            let sizes: Vec<usize> = messages
                .iter()
                .filter(|m| m.partition == q)
                .map(|m| m.events)
                .collect();
            let full = want.len() / MESSAGE_EVENTS;
            assert!(
                sizes[..full].iter().all(|&n| n == MESSAGE_EVENTS),
                "{sizes:?}"
            );
            assert_eq!(sizes.iter().sum::<usize>(), want.len());
        }
        // The same events give the same ids; other events, others.
        let again = log_messages(&events, parts, None);
        assert_eq!(
            messages.iter().map(|m| &m.id).collect::<Vec<_>>(),
            again.iter().map(|m| &m.id).collect::<Vec<_>>()
        );
        assert!(
            messages
                .iter()
                .all(|m| m.id.as_deref().is_some_and(|i| i.starts_with("ids/")))
        );
        // Without the first event, its partition's messages change (and
        // their ids); the others' stay as they were.
        let other = log_messages(&events[1..], parts, None);
        let first = partition_of(&events[0].user, parts);
        for o in &other {
            let known = messages.iter().any(|m| m.id == o.id);
            assert_eq!(known, o.partition != first, "{:?}", o.id);
        }
        // A request's key names its messages; without ids or key, none.
        let keyed = log_messages(&events[..3], parts, Some("k1"));
        let mut ids: Vec<String> = keyed.iter().filter_map(|m| m.id.clone()).collect();
        ids.sort();
        let mut want: Vec<String> = events[..3]
            .iter()
            .map(|e| format!("k1/{}/0", partition_of(&e.user, parts)))
            .collect();
        want.sort();
        want.dedup();
        assert_eq!(ids, want);
        let bare: Vec<crate::Event> = (0..5).map(|i| ev(i, false)).collect();
        assert!(
            log_messages(&bare, parts, None)
                .iter()
                .all(|m| m.id.is_none())
        );
    }

    #[cfg(feature = "cluster")]
    #[test]
    fn messages_decode_as_events_markers_or_nothing() {
        let one = serde_json::to_vec(&crate::json::JsonEvent(&ev(1, true))).expect("json");
        let Entry::Events(got, 0) = Entry::decode(&one) else {
            panic!("not an event")
        };
        assert_eq!(
            got.into_iter().map(sorted).collect::<Vec<_>>(),
            vec![sorted(ev(1, true))]
        );
        assert_eq!(Entry::decode(&Entry::marker(42)), Entry::Statements(42));
        assert_eq!(
            Entry::decode(br#"[{"user":"u1","type":"view","ts":5}, {"type":"x"}, 3]"#),
            Entry::Events(vec![crate::Event::new("u1", "view", 5)], 2)
        );
        for bad in [
            &b"not json"[..],
            br#"{"statements":"x"}"#,
            br#"{"type":"view"}"#,
        ] {
            assert_eq!(Entry::decode(bad), Entry::Unreadable, "{bad:?}");
        }
    }

    #[cfg(feature = "cluster")]
    #[test]
    fn a_cluster_has_from_one_to_65536_partitions() {
        let config = |partitions| jetstream::ClusterConfig {
            partitions,
            replicas: 1,
            stream_replicas: 1,
        };
        assert!(config(1).check().is_ok());
        assert!(config(65_536).check().is_ok());
        for bad in [0, 65_537, u32::MAX] {
            let err = config(bad).check().expect_err("refused");
            assert!(err.to_string().contains("from 1 to 65536"), "{err}");
        }
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
