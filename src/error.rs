//! The facade's error type.

/// Every error the `profiledb` library reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The storage engine failed or rejected the request; see
    /// [`profiledb_storage::Error`] for what to do about each case.
    #[error(transparent)]
    Storage(#[from] profiledb_storage::Error),
}

impl Error {
    /// The storage error's class, when the error came from storage.
    pub fn storage_kind(&self) -> Option<profiledb_storage::ErrorKind> {
        match self {
            Error::Storage(e) => Some(e.kind()),
        }
    }
}

/// The facade's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
