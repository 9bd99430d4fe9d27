//! The facade's error type.

/// Every error the `profiledb` library reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The storage engine failed or rejected the request; see
    /// [`profiledb_storage::Error`] for what to do about each case.
    #[error(transparent)]
    Storage(#[from] profiledb_storage::Error),
    /// A statement failed to parse, plan or run; see [`profiledb_query::Error`].
    /// Its `Display` draws the statement with a caret under the offending part.
    #[error(transparent)]
    Query(profiledb_query::Error),
}

impl From<profiledb_query::Error> for Error {
    /// A storage failure inside a statement stays a storage error.
    fn from(e: profiledb_query::Error) -> Error {
        match e {
            profiledb_query::Error::Storage(s) => Error::Storage(s),
            other => Error::Query(other),
        }
    }
}

impl From<profiledb_storage::TimeError> for Error {
    /// A timestamp or duration that does not parse is an invalid argument.
    fn from(e: profiledb_storage::TimeError) -> Error {
        Error::Storage(e.into())
    }
}

impl Error {
    /// A rejected event: its index among the events given, the field at
    /// fault (when one is) and why; [`Error::rejected_event`] reads it back.
    pub fn invalid_event(index: usize, e: profiledb_storage::EventError) -> Error {
        Error::Storage(profiledb_storage::Error::InvalidEvent {
            index,
            field: e.field,
            reason: e.reason,
        })
    }

    /// The storage error's class, when the error came from storage.
    pub fn storage_kind(&self) -> Option<profiledb_storage::ErrorKind> {
        match self {
            Error::Storage(e) => Some(e.kind()),
            Error::Query(_) => None,
        }
    }

    /// The message alone: for a statement's error, without the line, column
    /// and caret drawing that `Display` adds.
    pub fn message(&self) -> String {
        match self {
            Error::Query(q) => q.message(),
            Error::Storage(s) => s.to_string(),
        }
    }

    /// Where in the statement the error is (line, column and width), when it
    /// concerns part of it.
    pub fn position(&self) -> Option<&profiledb_query::Position> {
        match self {
            Error::Query(q) => q.position(),
            Error::Storage(_) => None,
        }
    }

    /// The rejected event's index in its batch and the field at fault, when
    /// an event was rejected (and nothing of its batch written).
    pub fn rejected_event(&self) -> Option<(usize, Option<&str>)> {
        match self {
            Error::Storage(profiledb_storage::Error::InvalidEvent { index, field, .. }) => {
                Some((*index, field.as_deref()))
            }
            _ => None,
        }
    }

    /// Whether a statement was cancelled by its deadline.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Query(profiledb_query::Error::Cancelled { .. }))
    }

    /// The row limit a result passed, when that is the error.
    pub fn row_limit(&self) -> Option<usize> {
        match self {
            Error::Query(profiledb_query::Error::TooManyRows { limit }) => Some(*limit),
            _ => None,
        }
    }

    /// Whether another node of a cluster failed to answer its part of a
    /// query (the query may succeed when retried).
    pub fn is_peer_failure(&self) -> bool {
        matches!(self, Error::Query(profiledb_query::Error::Peer { .. }))
    }

    /// Whether a read-only caller sent a statement that writes
    /// ([`crate::Db::execute_as`]).
    pub fn is_read_only_refusal(&self) -> bool {
        matches!(self, Error::Query(profiledb_query::Error::ReadOnly { .. }))
    }

    /// Whether the statement or the request was at fault (bad input), rather
    /// than the database: a client error, not a server error.
    pub fn is_client_error(&self) -> bool {
        use profiledb_storage::ErrorKind as K;
        match self {
            Error::Query(profiledb_query::Error::Peer { .. }) => false,
            Error::Query(_) => true,
            Error::Storage(s) => matches!(
                s.kind(),
                K::InvalidArgument | K::AlreadyExists | K::NotFound
            ),
        }
    }
}

/// The facade's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
