//! The storage crate's error type.

use std::fmt;

/// The broad class of an [`Error`], for callers that branch on what went wrong
/// rather than on the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Stored bytes failed to decode.
    Corruption,
    /// The caller passed something malformed (an event, a definition, an option).
    InvalidArgument,
    /// A named schema item or user does not exist.
    NotFound,
    /// A schema item with that name already exists.
    AlreadyExists,
    /// The database directory is held by another process.
    Locked,
    /// The disk is full.
    NoSpace,
    /// The store was busy or timed out; the same request may succeed if
    /// retried.
    Busy,
    /// The file system or RocksDB failed.
    Io,
}

/// The status a RocksDB failure carried, kept so that callers branch on it
/// rather than on its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// Busy, or asked to try again: retry.
    Busy,
    /// Timed out or expired: retry.
    TimedOut,
    /// Aborted or incomplete: retry.
    Aborted,
    /// An I/O failure of the file system.
    Io,
    /// Stored data is damaged.
    Corruption,
    /// RocksDB does not support what was asked.
    NotSupported,
    /// RocksDB refused an argument (an option, a key range).
    InvalidArgument,
    /// The database is shutting down.
    ShutdownInProgress,
    /// Any other status.
    Other,
}

/// Every error the storage engine reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Stored bytes in `cf` under `key` do not decode. The data on disk is damaged
    /// (or was written by an incompatible version); restore from a checkpoint.
    #[error("corruption in column family '{cf}' at key {key}: {reason}")]
    Corruption {
        /// The column family holding the bad value.
        cf: &'static str,
        /// The key, printed with non-printable bytes escaped.
        key: EscapedKey,
        /// What was wrong with the bytes.
        reason: String,
    },
    /// Event `index` of a batch was rejected; nothing of the batch was written.
    /// Fix or drop that event and send the batch again.
    #[error("event {index}{}: {reason}", field.as_ref().map(|f| format!(", field '{f}'")).unwrap_or_default())]
    InvalidEvent {
        /// Position of the event in the batch, from 0.
        index: usize,
        /// The field at fault, when one field is.
        field: Option<String>,
        /// Why the event was rejected.
        reason: String,
    },
    /// An argument (a definition, an option, a user id) is malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A definition is wrong about one event field: one it reads that its
    /// event type does not declare, or declares otherwise; a bad field of a
    /// declaration.
    #[error("invalid argument: field '{field}': {reason}")]
    InvalidField {
        /// The field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No schema item or user of that name exists.
    #[error("{kind} '{name}' does not exist")]
    NotFound {
        /// What was looked for: "feature", "user", ...
        kind: &'static str,
        /// The name looked for.
        name: String,
    },
    /// A schema item of that name already exists; drop it first or pick another name.
    #[error("{kind} '{name}' already exists")]
    AlreadyExists {
        /// The kind of the existing item.
        kind: &'static str,
        /// The name in use.
        name: String,
    },
    /// Another process has the database open. Use that process (for example
    /// through its server) or stop it first.
    #[error("database at {path} is already open in another process")]
    Locked {
        /// The database directory.
        path: String,
    },
    /// The file system failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The disk is full: nothing of the write was stored. Free space; writes
    /// resume by themselves once there is room for a memtable to be flushed.
    #[error(
        "the disk is full; nothing of this write was stored. Writes resume by themselves once the disk has room again: {0}"
    )]
    NoSpace(String),
    /// RocksDB failed with `status`. Retry a busy or timed-out request;
    /// check the disk on an I/O failure; restore from a checkpoint on
    /// corruption.
    #[error("storage engine error ({status:?}): {message}")]
    Store {
        /// RocksDB's status.
        status: Status,
        /// RocksDB's message.
        message: String,
    },
    /// The engine failed for a reason of its own (a missing column family, a
    /// thread that could not start).
    #[error("storage engine error: {0}")]
    Engine(String),
}

impl Error {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Corruption { .. } => ErrorKind::Corruption,
            Error::InvalidEvent { .. } | Error::InvalidArgument(_) | Error::InvalidField { .. } => {
                ErrorKind::InvalidArgument
            }
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::Locked { .. } => ErrorKind::Locked,
            Error::NoSpace(_) => ErrorKind::NoSpace,
            Error::Io(e) if e.kind() == std::io::ErrorKind::StorageFull => ErrorKind::NoSpace,
            Error::Store { status, .. } => match status {
                Status::Busy | Status::TimedOut | Status::Aborted => ErrorKind::Busy,
                Status::Corruption => ErrorKind::Corruption,
                Status::InvalidArgument => ErrorKind::InvalidArgument,
                _ => ErrorKind::Io,
            },
            Error::Io(_) | Error::Engine(_) => ErrorKind::Io,
        }
    }

    /// A value under `key` of column family `cf` that does not decode.
    pub fn corruption(cf: &'static str, key: &[u8], reason: impl fmt::Display) -> Error {
        Error::Corruption {
            cf,
            key: EscapedKey(key.to_vec()),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Error {
        Error::InvalidArgument(msg.into())
    }
}

/// A key printed with printable ASCII as is and other bytes as `\xNN`.
#[derive(Clone, PartialEq, Eq)]
pub struct EscapedKey(pub Vec<u8>);

impl fmt::Display for EscapedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for &b in &self.0 {
            if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        f.write_str("\"")
    }
}

impl fmt::Debug for EscapedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The storage crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
