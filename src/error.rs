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

impl Error {
    /// The storage error's class, when the error came from storage.
    pub fn storage_kind(&self) -> Option<profiledb_storage::ErrorKind> {
        match self {
            Error::Storage(e) => Some(e.kind()),
            Error::Query(_) => None,
        }
    }
}

/// The facade's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
