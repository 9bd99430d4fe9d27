//! Disk space, for messages that say how much room an operation needs.
//!
//! `rustix` gives `statvfs` without `unsafe`; it is already in the build
//! through `tempfile`.

use std::path::Path;

/// Bytes free to unprivileged writers on the file system holding `path`.
pub(crate) fn free_bytes(path: &Path) -> Option<u64> {
    let probe = if path.exists() {
        path
    } else {
        path.parent().filter(|p| !p.as_os_str().is_empty())?
    };
    let st = rustix::fs::statvfs(probe).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Total size of the write-ahead log files (`*.log`) in the database at `dir`.
pub(crate) fn wal_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// `n` bytes, in the largest binary unit that keeps it at least 1.
pub(crate) fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut x = n as f64;
    let mut unit = 0;
    while x >= 1024.0 && unit < UNITS.len() - 1 {
        x /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{x:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human(0), "0 bytes");
        assert_eq!(human(1023), "1023 bytes");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(64 << 20), "64.0 MiB");
    }

    #[test]
    fn free_space_of_a_temp_dir_is_known() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        assert!(free_bytes(dir.path()).is_some_and(|n| n > 0));
        assert!(free_bytes(&dir.path().join("not-yet")).is_some());
        std::fs::write(dir.path().join("000004.log"), [0u8; 100])?;
        std::fs::write(dir.path().join("MANIFEST-000001"), [0u8; 7])?;
        assert_eq!(wal_bytes(dir.path()), 100);
        Ok(())
    }
}
