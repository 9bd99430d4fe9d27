//! Merge operators as plain functions over bytes.
//!
//! Each column family's operator lives in its own module and is unit-tested here,
//! without RocksDB. The engine wraps them; a decode failure becomes `None` for
//! RocksDB, which reports it to the reader as corruption of that key.

pub mod cell;
pub mod decayed;
pub mod distinct;
pub mod keyed;
pub mod record;
pub mod vector;
pub mod window;

/// First byte of every stored value: what it is and its format version.
pub mod tags {
    /// A record of scalar cells (features or attributes), format 1.
    pub const RECORD: u8 = 0x01;
    /// A window bucket, format 1.
    pub const WINDOW: u8 = 0x02;
    /// Reserved: ewma vectors were once values of their own; they are cells now.
    pub const RESERVED_EWMA: u8 = 0x03;
    /// An sgd step operand, format 1.
    pub const SGD_STEP: u8 = 0x04;
    /// An sgd user vector, format 1.
    pub const SGD_STATE: u8 = 0x05;
    /// A window bucket holding one event: just its value, format 1.
    pub const WINDOW_SINGLE: u8 = 0x06;
    /// An entry of the event history, format 1.
    pub const HISTORY_ENTRY: u8 = 0x07;
    /// A user's base state in the event history, format 1.
    pub const HISTORY_BASE: u8 = 0x08;
    /// Events sent between processes (a cluster's log), format 1.
    pub const EVENT_BATCH: u8 = 0x09;
    /// The catalog, format 1 (JSON after the tag).
    pub const CATALOG: u8 = 0x10;
}

#[cfg(test)]
mod tests;
