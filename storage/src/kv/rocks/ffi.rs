//! The RocksDB C API calls that rust-rocksdb does not wrap, in one audited
//! place: setting mutable database-wide options (`DB::SetDBOptions`, used by the
//! purge to roll the MANIFEST), stopping manual compactions (so that a purge
//! honours a statement's deadline), and keeping recovery from flushing
//! memtables (so that a database on a nearly full disk still opens).

use std::ffi::{CString, c_char};

use rocksdb::{AsRawPtr as _, DB, Options};

use crate::error::{Error, Result};

/// Sets mutable database-wide options (`DB::SetDBOptions`).
pub(crate) fn set_db_options(db: &DB, opts: &[(&str, &str)]) -> Result<()> {
    let owned: Vec<(CString, CString)> = opts
        .iter()
        .map(|(k, v)| Ok((CString::new(*k)?, CString::new(*v)?)))
        .collect::<std::result::Result<_, std::ffi::NulError>>()
        .map_err(|e| Error::invalid(e.to_string()))?;
    let keys: Vec<*const c_char> = owned.iter().map(|(k, _)| k.as_ptr()).collect();
    let values: Vec<*const c_char> = owned.iter().map(|(_, v)| v.as_ptr()).collect();
    let count = i32::try_from(opts.len()).map_err(|e| Error::invalid(e.to_string()))?;
    let mut err: *mut c_char = std::ptr::null_mut();
    // SAFETY: the database pointer is live for `db`'s lifetime; `keys` and
    // `values` hold `count` pointers to NUL-terminated strings that `owned`
    // keeps alive across the call, which copies them; `err` is either left null
    // or set to a string that RocksDB allocated with malloc, freed below.
    #[allow(unsafe_code)]
    unsafe {
        librocksdb_sys::rocksdb_set_db_options(
            db.as_raw_ptr(),
            count,
            keys.as_ptr(),
            values.as_ptr(),
            &raw mut err,
        );
        if !err.is_null() {
            let message = std::ffi::CStr::from_ptr(err).to_string_lossy().into_owned();
            librocksdb_sys::rocksdb_free(err.cast());
            return Err(Error::Engine(message));
        }
    }
    Ok(())
}

/// Replays the write-ahead log into memtables at open without flushing them to
/// tables (`DBOptions::avoid_flush_during_recovery`).
pub(crate) fn avoid_flush_during_recovery(opts: &mut Options) {
    // SAFETY: the options pointer is live and exclusively borrowed for the call,
    // which sets one field.
    #[allow(unsafe_code)]
    unsafe {
        librocksdb_sys::rocksdb_options_set_avoid_flush_during_recovery(opts.as_raw_ptr(), 1);
    }
}

/// Stops running manual compactions and refuses new ones (`true`), or allows
/// them again (`false`).
pub(crate) fn pause_manual_compaction(db: &DB, pause: bool) {
    // SAFETY: the database pointer is live for `db`'s lifetime; both calls only
    // flip RocksDB's internal counter, and are safe from any thread.
    #[allow(unsafe_code)]
    unsafe {
        if pause {
            librocksdb_sys::rocksdb_disable_manual_compaction(db.as_raw_ptr());
        } else {
            librocksdb_sys::rocksdb_enable_manual_compaction(db.as_raw_ptr());
        }
    }
}
