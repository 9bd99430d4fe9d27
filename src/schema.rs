//! A database's schema apart from the database: what a cluster's router
//! checks events against before it publishes them, so that an event no node
//! would take is refused (or set aside, with `skip_bad`) as one server
//! refuses it, instead of being skipped later by the nodes.

use std::sync::Arc;

use profiledb_storage::catalog::Bindings;
use profiledb_storage::{Catalog, Event, EventError};

use crate::{Error, Result};

/// The schema of a database at one moment ([`crate::Db::schema`]), or as
/// another process sent it ([`Schema::from_bytes`]).
#[derive(Debug, Clone)]
pub struct Schema {
    bindings: Arc<Bindings>,
}

impl Schema {
    pub(crate) fn new(bindings: Arc<Bindings>) -> Schema {
        Schema { bindings }
    }

    /// The schema as bytes, for [`Schema::from_bytes`] in another process of
    /// the same version.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bindings.catalog.encode()
    }

    /// Reads a schema [`Schema::to_bytes`] wrote.
    ///
    /// # Errors
    /// An invalid argument saying why the bytes are not a schema.
    pub fn from_bytes(bytes: &[u8]) -> Result<Schema> {
        let catalog = Catalog::decode(bytes).map_err(|e| {
            Error::Storage(profiledb_storage::Error::InvalidArgument(format!(
                "the schema does not decode: {e}"
            )))
        })?;
        Ok(Schema::new(Arc::new(Bindings::new(catalog))))
    }

    /// How many changes made it: a later schema of the same database has a
    /// larger version.
    pub fn version(&self) -> u64 {
        self.bindings.catalog.version
    }

    /// Checks one event as ingest against this schema would, writing
    /// nothing.
    ///
    /// # Errors
    /// The field at fault and why, as [`crate::Db::ingest`] would reject it.
    pub fn validate(&self, event: &Event) -> std::result::Result<(), EventError> {
        profiledb_storage::event::check(&self.bindings, event)
    }
}
