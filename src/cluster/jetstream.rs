//! The log on NATS JetStream (`async-nats`, the NATS project's own Rust
//! client): one stream, `PROFILEDB`, its subjects `profiledb.events.<p>`
//! one per partition, replicated by JetStream (R3 on a cluster of three or
//! more servers). A message's id is JetStream's `Nats-Msg-Id`, which the
//! stream deduplicates within its window. The cluster's settings live in
//! the key-value bucket `profiledb` (`config`), beside what nodes report
//! (`node.<name>`: the positions they applied).
//!
//! A partition is read by an ordered consumer filtered to its subject, from
//! a start sequence: it needs no acknowledgements (the node's stored
//! position is the truth) and recreates itself after a server restart.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::log::{Log, LogError, LogReader, Message};

/// The stream's name.
pub const STREAM: &str = "PROFILEDB";
/// The key-value bucket of the cluster's settings and reports.
pub const BUCKET: &str = "profiledb";
/// How long a partition's reader gathers messages after the first of a
/// pull: writes of one or two events each cost several times their events.
pub const LINGER: Duration = Duration::from_millis(20);
/// Acknowledgements a publisher awaits at most at once (below the client's
/// own bound on them).
pub const IN_FLIGHT: usize = 1000;
/// How long the stream remembers message ids to drop a repeat.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// The subject of `partition`.
pub fn subject(partition: u32) -> String {
    format!("profiledb.events.{partition}")
}

/// The subject of the cluster's statements (inside the stream's
/// `profiledb.events.*`, so that one stream orders them and the events).
pub const STATEMENTS_SUBJECT: &str = "profiledb.events.statements";

/// The cluster's settings, fixed when it is made (`profiledb cluster init`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterConfig {
    /// Partitions users are spread over ([`super::partition_of`]).
    pub partitions: u32,
    /// Standby nodes per partition besides its owner.
    pub replicas: u32,
    /// Copies JetStream keeps of the stream.
    pub stream_replicas: u32,
}

impl ClusterConfig {
    /// Refuses settings no cluster can run with: no partition, or more than
    /// [`super::MAX_PARTITIONS`].
    ///
    /// # Errors
    /// What is wrong with them.
    pub fn check(&self) -> Result<(), LogError> {
        if self.partitions == 0 || self.partitions > super::MAX_PARTITIONS {
            return Err(LogError(format!(
                "a cluster has from 1 to {} partitions, not {}",
                super::MAX_PARTITIONS,
                self.partitions
            )));
        }
        Ok(())
    }
}

/// What a node reports of itself: the position it applied in each
/// partition it reads, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReport {
    /// Where the node serves HTTP (`HOST:PORT`).
    #[serde(default)]
    pub addr: String,
    /// Partition → last applied sequence number.
    pub positions: std::collections::BTreeMap<u32, u64>,
    /// When, epoch ms.
    pub at: i64,
}

fn err(what: &str, e: impl std::fmt::Display) -> LogError {
    LogError(format!("{what}: {e}"))
}

/// Longest one request to NATS may take. The client bounds its own
/// requests, but one sent to a server that dies meanwhile can wait for
/// ever; every request here ends by this time, with an error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

async fn bounded<T>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, LogError>>,
) -> Result<T, LogError> {
    tokio::time::timeout(REQUEST_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| {
            Err(LogError(format!(
                "{what}: no answer within {REQUEST_TIMEOUT:?}"
            )))
        })
}

/// A connection to a NATS server of the cluster, and the stream.
#[derive(Debug, Clone)]
pub struct JetStream {
    context: jetstream::Context,
    stream: stream::Stream,
}

impl JetStream {
    /// Connects to `url` (`nats://HOST:PORT`, several comma-separated) and
    /// opens the stream.
    ///
    /// # Errors
    /// No server answering, or no stream (`profiledb cluster init` makes it).
    pub async fn connect(url: &str) -> Result<JetStream, LogError> {
        let context = Self::context(url).await?;
        let stream = context.get_stream(STREAM).await.map_err(|e| {
            err(
                &format!("opening the stream {STREAM} (run `profiledb cluster init` first)"),
                e,
            )
        })?;
        Ok(JetStream { context, stream })
    }

    async fn context(url: &str) -> Result<jetstream::Context, LogError> {
        let servers = url
            .split(',')
            .map(|u| u.trim().parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(&format!("the NATS address {url}"), e))?;
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .retry_on_initial_connect()
            .connect(servers)
            .await
            .map_err(|e| err(&format!("connecting to NATS at {url}"), e))?;
        Ok(jetstream::new(client))
    }

    /// Makes the cluster: the stream and the settings bucket. Creating it
    /// again with the same settings is no error; with others, it is.
    ///
    /// # Errors
    /// No server answering, settings that differ from the cluster's, or a
    /// stream JetStream cannot make (more replicas than servers).
    pub async fn init(url: &str, config: &ClusterConfig) -> Result<JetStream, LogError> {
        config.check()?;
        let context = Self::context(url).await?;
        let kv = context
            .create_key_value(jetstream::kv::Config {
                bucket: BUCKET.into(),
                history: 1,
                num_replicas: config.stream_replicas as usize,
                ..Default::default()
            })
            .await
            .map_err(|e| err("creating the settings bucket", e))?;
        let wanted = serde_json::to_vec(config).map_err(|e| err("encoding the settings", e))?;
        match kv
            .get("config")
            .await
            .map_err(|e| err("reading the settings", e))?
        {
            Some(have) if have.as_ref() != wanted.as_slice() => {
                return Err(LogError(format!(
                    "the cluster exists with other settings: {}",
                    String::from_utf8_lossy(&have)
                )));
            }
            Some(_) => {}
            None => {
                kv.put("config", wanted.into())
                    .await
                    .map_err(|e| err("writing the settings", e))?;
            }
        }
        let stream = context
            .get_or_create_stream(stream::Config {
                name: STREAM.into(),
                subjects: vec!["profiledb.events.*".into()],
                num_replicas: config.stream_replicas as usize,
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|e| err(&format!("creating the stream {STREAM}"), e))?;
        Ok(JetStream { context, stream })
    }

    /// The cluster's settings.
    ///
    /// # Errors
    /// No bucket or no settings (`profiledb cluster init` makes them).
    pub async fn config(&self) -> Result<ClusterConfig, LogError> {
        bounded("reading the settings", async {
            let kv = self.bucket().await?;
            let bytes = kv
                .get("config")
                .await
                .map_err(|e| err("reading the settings", e))?
                .ok_or_else(|| {
                    LogError("the cluster has no settings; run `profiledb cluster init`".into())
                })?;
            let config: ClusterConfig =
                serde_json::from_slice(&bytes).map_err(|e| err("the cluster's settings", e))?;
            config.check()?;
            Ok(config)
        })
        .await
    }

    async fn bucket(&self) -> Result<jetstream::kv::Store, LogError> {
        self.context.get_key_value(BUCKET).await.map_err(|e| {
            err(
                "opening the settings bucket (run `profiledb cluster init`)",
                e,
            )
        })
    }

    /// Records what node `name` applied.
    ///
    /// # Errors
    /// The bucket cannot be written.
    pub async fn report(&self, name: &str, report: &NodeReport) -> Result<(), LogError> {
        bounded("writing a node's report", async {
            let bytes = serde_json::to_vec(report).map_err(|e| err("encoding a report", e))?;
            self.bucket()
                .await?
                .put(format!("node.{name}"), bytes.into())
                .await
                .map_err(|e| err("writing a node's report", e))?;
            Ok(())
        })
        .await
    }

    /// What every node reported last, by name.
    ///
    /// # Errors
    /// The bucket cannot be read.
    pub async fn reports(&self) -> Result<Vec<(String, NodeReport)>, LogError> {
        bounded("reading the reports", async {
            let kv = self.bucket().await?;
            let mut keys = kv.keys().await.map_err(|e| err("listing reports", e))?;
            let mut names = Vec::new();
            while let Some(key) = keys.next().await {
                let key = key.map_err(|e| err("listing reports", e))?;
                if let Some(name) = key.strip_prefix("node.") {
                    names.push(name.to_owned());
                }
            }
            // Each report from the bucket's stream leader: a key-value get
            // may be answered by any replica (JetStream's direct get), and
            // one that lags (a server just restarted) answers old reports,
            // which would make live nodes look dead.
            let mut out = Vec::with_capacity(names.len());
            for name in names {
                let m = match kv
                    .stream
                    .get_last_raw_message_by_subject(&format!("{}node.{name}", kv.prefix))
                    .await
                {
                    Ok(m) => m,
                    Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
                        continue;
                    }
                    Err(e) => return Err(err("reading a report", e)),
                };
                let deleted = m
                    .headers
                    .get("KV-Operation")
                    .is_some_and(|op| matches!(op.as_str(), "DEL" | "PURGE"));
                if deleted {
                    continue;
                }
                let report =
                    serde_json::from_slice(&m.payload).map_err(|e| err("a node's report", e))?;
                out.push((name, report));
            }
            out.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(out)
        })
        .await
    }
}

impl JetStream {
    async fn publish_to(
        &self,
        subject: String,
        id: Option<&str>,
        payload: Vec<u8>,
    ) -> Result<(u64, bool), LogError> {
        bounded("publishing", async {
            let mut headers = async_nats::HeaderMap::new();
            if let Some(id) = id {
                headers.insert("Nats-Msg-Id", id);
            }
            let ack = self
                .context
                .publish_with_headers(subject, headers, payload.into())
                .await
                .map_err(|e| err("publishing", e))?
                .await
                .map_err(|e| err("publishing (awaiting the stream's acknowledgement)", e))?;
            Ok((ack.sequence, ack.duplicate))
        })
        .await
    }

    /// Sends the messages with up to [`IN_FLIGHT`] acknowledgements
    /// outstanding (the client holds a permit for each until it is awaited),
    /// answering each one's (sequence, repeated) in the order given.
    async fn publish_many(
        &self,
        messages: Vec<(String, Option<String>, Vec<u8>)>,
    ) -> Result<Vec<(u64, bool)>, LogError> {
        let mut out = Vec::with_capacity(messages.len());
        let mut pending = std::collections::VecDeque::with_capacity(IN_FLIGHT);
        let take = |ack: Result<jetstream::publish::PublishAck, _>| {
            ack.map(|a| (a.sequence, a.duplicate))
                .map_err(|e| err("publishing (awaiting the stream's acknowledgement)", e))
        };
        for (subject, id, payload) in messages {
            if pending.len() == IN_FLIGHT
                && let Some(ack) = pending.pop_front()
            {
                out.push(bounded("publishing", async { take(ack.await) }).await?);
            }
            let mut headers = async_nats::HeaderMap::new();
            if let Some(id) = id {
                headers.insert("Nats-Msg-Id", id.as_str());
            }
            pending.push_back(
                bounded("publishing", async {
                    self.context
                        .publish_with_headers(subject, headers, payload.into())
                        .await
                        .map_err(|e| err("publishing", e))
                })
                .await?,
            );
        }
        for ack in pending {
            out.push(bounded("publishing", async { take(ack.await) }).await?);
        }
        Ok(out)
    }

    /// The last message of `subject`, `None` when it has none.
    async fn last_message(
        &self,
        subject: &str,
    ) -> Result<Option<jetstream::message::StreamMessage>, LogError> {
        bounded("reading the last message of a subject", async {
            match self.stream.get_last_raw_message_by_subject(subject).await {
                Ok(m) => Ok(Some(m)),
                Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
                Err(e) => Err(err(&format!("reading {subject}"), e)),
            }
        })
        .await
    }

    async fn reader_of(&self, subject: String, after: u64) -> Result<PartitionReader, LogError> {
        bounded("opening a reader", async {
            let what = format!("reading {subject}");
            let consumer = self
                .stream
                .create_consumer(consumer::pull::OrderedConfig {
                    filter_subject: subject.clone(),
                    deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                        start_sequence: after + 1,
                    },
                    ..Default::default()
                })
                .await
                .map_err(|e| err(&what, e))?;
            let messages = consumer.messages().await.map_err(|e| err(&what, e))?;
            Ok(PartitionReader { subject, messages })
        })
        .await
    }

    async fn last_of(&self, subject: &str) -> Result<u64, LogError> {
        Ok(self.last_message(subject).await?.map_or(0, |m| m.sequence))
    }
}

impl Log for JetStream {
    type Reader = PartitionReader;

    async fn publish(
        &self,
        partition: u32,
        id: Option<&str>,
        payload: Vec<u8>,
    ) -> Result<(u64, bool), LogError> {
        self.publish_to(subject(partition), id, payload).await
    }

    async fn publish_all(
        &self,
        messages: Vec<(u32, Option<String>, Vec<u8>)>,
    ) -> Result<Vec<(u64, bool)>, LogError> {
        let messages = messages
            .into_iter()
            .map(|(partition, id, payload)| (subject(partition), id, payload))
            .collect();
        self.publish_many(messages).await
    }

    async fn reader(&self, partition: u32, after: u64) -> Result<PartitionReader, LogError> {
        self.reader_of(subject(partition), after).await
    }

    async fn last(&self, partition: u32) -> Result<u64, LogError> {
        self.last_of(&subject(partition)).await
    }

    async fn publish_statement(
        &self,
        id: Option<&str>,
        payload: Vec<u8>,
    ) -> Result<(u64, bool), LogError> {
        self.publish_to(STATEMENTS_SUBJECT.into(), id, payload)
            .await
    }

    async fn statements(&self, after: u64) -> Result<PartitionReader, LogError> {
        self.reader_of(STATEMENTS_SUBJECT.into(), after).await
    }

    async fn last_statement(&self) -> Result<u64, LogError> {
        self.last_of(STATEMENTS_SUBJECT).await
    }

    async fn put_effects(
        &self,
        statement: u64,
        effects: Vec<(u32, Vec<u8>)>,
    ) -> Result<(), LogError> {
        let mut messages = Vec::new();
        for (partition, bytes) in effects {
            for (i, chunk) in effect_chunks(&bytes).into_iter().enumerate() {
                let name = effect_name(statement, partition, i);
                messages.push((format!("profiledb.events.{name}"), Some(name), chunk));
            }
        }
        self.publish_many(messages).await.map(drop)
    }

    async fn effect(&self, statement: u64, partition: u32) -> Result<Option<Vec<u8>>, LogError> {
        let name = |i| format!("profiledb.events.{}", effect_name(statement, partition, i));
        let last = |i| async move {
            let m = self.last_message(&name(i)).await?;
            Ok::<_, LogError>(m.map(|m| m.payload.to_vec()))
        };
        let Some(first) = last(0).await? else {
            return Ok(None);
        };
        let Some((n, _, _)) = effect_chunk(&first) else {
            tracing::warn!(
                "the effect of statement {statement} in partition {partition} does not decode"
            );
            return Ok(None);
        };
        let mut chunks = vec![first];
        for i in 1..n as usize {
            match last(i).await? {
                Some(c) => chunks.push(c),
                None => return Ok(None),
            }
        }
        let joined = join_effect_chunks(&chunks);
        if joined.is_none() {
            tracing::warn!(
                "the effect of statement {statement} in partition {partition} is not whole"
            );
        }
        Ok(joined)
    }
}

/// The subject's last token and message id of chunk `chunk` of what
/// `statement` changed in `partition`: inside the stream's
/// `profiledb.events.*`, apart from every partition's and the statements'
/// subjects, which readers filter on.
fn effect_name(statement: u64, partition: u32, chunk: usize) -> String {
    format!("effect-{statement}-{partition}-{chunk}")
}

/// The bytes each chunk of an effect starts with: the number of chunks
/// (u32) and the XXH3-64 of the whole (u64), little-endian.
const CHUNK_HEAD: usize = 12;

/// `bytes` cut into messages of at most [`super::MESSAGE_BYTES`] (NATS takes
/// 1 MiB by default), each headed by the count of chunks and a hash of the
/// whole: chunks of two different wholes never join.
fn effect_chunks(bytes: &[u8]) -> Vec<Vec<u8>> {
    let size = super::MESSAGE_BYTES - CHUNK_HEAD;
    let pieces: Vec<&[u8]> = if bytes.is_empty() {
        vec![bytes]
    } else {
        bytes.chunks(size).collect()
    };
    let n = u32::try_from(pieces.len()).unwrap_or(u32::MAX);
    let hash = xxhash_rust::xxh3::xxh3_64(bytes);
    pieces
        .into_iter()
        .map(|piece| {
            let mut chunk = Vec::with_capacity(CHUNK_HEAD + piece.len());
            chunk.extend_from_slice(&n.to_le_bytes());
            chunk.extend_from_slice(&hash.to_le_bytes());
            chunk.extend_from_slice(piece);
            chunk
        })
        .collect()
}

/// A chunk's count of chunks, hash of the whole and piece.
fn effect_chunk(chunk: &[u8]) -> Option<(u32, u64, &[u8])> {
    let (head, piece) = chunk.split_at_checked(CHUNK_HEAD)?;
    let n = u32::from_le_bytes(head[..4].try_into().ok()?);
    let hash = u64::from_le_bytes(head[4..].try_into().ok()?);
    (n > 0).then_some((n, hash, piece))
}

/// The whole that `chunks` (in order) were cut from, when they are all
/// of one whole and all there.
fn join_effect_chunks(chunks: &[Vec<u8>]) -> Option<Vec<u8>> {
    let (n, hash, _) = effect_chunk(chunks.first()?)?;
    if chunks.len() != n as usize {
        return None;
    }
    let mut whole = Vec::new();
    for chunk in chunks {
        let (m, h, piece) = effect_chunk(chunk)?;
        if (m, h) != (n, hash) {
            return None;
        }
        whole.extend_from_slice(piece);
    }
    (xxhash_rust::xxh3::xxh3_64(&whole) == hash).then_some(whole)
}

/// Reads one partition (or the statements) through an ordered consumer.
pub struct PartitionReader {
    subject: String,
    messages: consumer::pull::Ordered,
}

impl std::fmt::Debug for PartitionReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionReader")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl LogReader for PartitionReader {
    async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<Message>, LogError> {
        let mut out = Vec::new();
        let what = |e: &dyn std::fmt::Display| err(&format!("reading {}", self.subject), e);
        // The first message may take `wait`; the rest are gathered for
        // `LINGER` after it, so that a partition whose messages trickle in
        // is applied in pulls of many rather than one write each.
        let mut deadline = tokio::time::Instant::now() + wait;
        while out.len() < max {
            let next = match tokio::time::timeout_at(deadline, self.messages.next()).await {
                Err(_) => break,
                Ok(None) => return Err(what(&"the consumer ended")),
                Ok(Some(Err(e))) => return Err(what(&e)),
                Ok(Some(Ok(m))) => m,
            };
            let seq = next.info().map_err(|e| what(&e))?.stream_sequence;
            out.push(Message {
                seq,
                payload: next.payload.to_vec(),
            });
            if out.len() == 1 {
                deadline = tokio::time::Instant::now() + LINGER;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An effect of any size comes back whole from its chunks, each within
    /// a message's bytes; chunks missing, reordered, of another whole or
    /// cut short give nothing.
    #[test]
    fn effects_are_cut_into_messages_and_joined_whole_or_not_at_all() {
        let big: Vec<u8> = (0..super::super::MESSAGE_BYTES * 2 + 17)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        for bytes in [Vec::new(), b"{\"changed\":{}}".to_vec(), big.clone()] {
            let chunks = effect_chunks(&bytes);
            assert!(
                chunks
                    .iter()
                    .all(|c| c.len() <= super::super::MESSAGE_BYTES)
            );
            // Hand-counted: one chunk for the small ones, three for the big.
            let want = if bytes.len() > super::super::MESSAGE_BYTES {
                3
            } else {
                1
            };
            assert_eq!(chunks.len(), want);
            assert_eq!(join_effect_chunks(&chunks), Some(bytes.clone()));
        }
        let chunks = effect_chunks(&big);
        assert_eq!(join_effect_chunks(&chunks[..2]), None);
        let swapped = vec![chunks[1].clone(), chunks[0].clone(), chunks[2].clone()];
        assert_eq!(join_effect_chunks(&swapped), None);
        let mut other = big.clone();
        other[0] ^= 1;
        let mixed = vec![
            chunks[0].clone(),
            effect_chunks(&other)[1].clone(),
            chunks[2].clone(),
        ];
        assert_eq!(join_effect_chunks(&mixed), None);
        let mut cut = chunks.clone();
        cut[2].pop();
        assert_eq!(join_effect_chunks(&cut), None);
        assert_eq!(join_effect_chunks(&[vec![1, 0, 0]]), None);
        assert_eq!(join_effect_chunks(&[]), None);
    }
}
