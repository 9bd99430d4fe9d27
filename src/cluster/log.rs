//! The log a cluster runs on, behind a small trait: events are published
//! to a partition (deduplicated by a message id) and read back in order
//! from after a position. [`super::jetstream::JetStream`] implements it on
//! NATS JetStream; a Kafka implementation can follow.

use std::future::Future;
use std::time::Duration;

/// Why the log failed, as a message naming the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogError(pub String);

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LogError {}

/// One message read from a partition: its sequence number in the log (which
/// only grows along a partition) and its bytes ([`super::Entry`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The log's sequence number.
    pub seq: u64,
    /// What it holds ([`super::Entry::decode`]).
    pub payload: Vec<u8>,
}

/// A partitioned log of events. Every call ends within a bounded time,
/// with an error when the log does not answer: a node's loops rely on it.
pub trait Log: Send + Sync + 'static {
    /// What reads one partition.
    type Reader: LogReader;

    /// Appends `payload` to `partition`, and answers its sequence number
    /// once the log holds it durably. A message with the `id` of one the
    /// log holds (within its deduplication window) is not appended twice:
    /// the first one's sequence is answered, with `true`.
    fn publish(
        &self,
        partition: u32,
        id: Option<&str>,
        payload: Vec<u8>,
    ) -> impl Future<Output = Result<(u64, bool), LogError>> + Send;

    /// Appends many messages, in order within each partition, answering
    /// each one's (sequence, repeated) in the order given. A log may send
    /// them all before awaiting the acknowledgements; by default they go one
    /// at a time.
    fn publish_all(
        &self,
        messages: Vec<(u32, Option<String>, Vec<u8>)>,
    ) -> impl Future<Output = Result<Vec<(u64, bool)>, LogError>> + Send {
        async move {
            let mut out = Vec::with_capacity(messages.len());
            for (partition, id, payload) in messages {
                out.push(self.publish(partition, id.as_deref(), payload).await?);
            }
            Ok(out)
        }
    }

    /// A reader of `partition` from the first message after `after`.
    fn reader(
        &self,
        partition: u32,
        after: u64,
    ) -> impl Future<Output = Result<Self::Reader, LogError>> + Send;

    /// The sequence number of the last message of `partition`, 0 when it
    /// has none.
    fn last(&self, partition: u32) -> impl Future<Output = Result<u64, LogError>> + Send;

    /// Appends a statement ([`super::Statement`], as JSON) to the log of
    /// statements, apart from the partitions, deduplicated by `id` as
    /// [`Log::publish`] is; answers its sequence number, which orders it
    /// among the statements.
    fn publish_statement(
        &self,
        id: Option<&str>,
        payload: Vec<u8>,
    ) -> impl Future<Output = Result<(u64, bool), LogError>> + Send;

    /// A reader of the statements from the first after `after`.
    fn statements(&self, after: u64)
    -> impl Future<Output = Result<Self::Reader, LogError>> + Send;

    /// The sequence number of the last statement, 0 when there is none.
    fn last_statement(&self) -> impl Future<Output = Result<u64, LogError>> + Send;

    /// Keeps what statement `statement` changed in each partition
    /// ([`super::Effect`], encoded), one `(partition, bytes)` each. Every
    /// node that follows a partition puts the same bytes for it: the log
    /// keeps one copy, however many put it, and whatever their size.
    fn put_effects(
        &self,
        statement: u64,
        effects: Vec<(u32, Vec<u8>)>,
    ) -> impl Future<Output = Result<(), LogError>> + Send;

    /// The bytes [`Log::put_effects`] kept for `statement` in `partition`,
    /// whole; `None` when no node kept them whole.
    fn effect(
        &self,
        statement: u64,
        partition: u32,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, LogError>> + Send;
}

/// Reads one partition in order.
pub trait LogReader: Send + 'static {
    /// Up to `max` messages, in order: those that are there, else waiting
    /// up to `wait` for the first (an empty batch when none came).
    fn next_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> impl Future<Output = Result<Vec<Message>, LogError>> + Send;
}
