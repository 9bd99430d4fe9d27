//! The vector index's snapshot file, so that reopening a database does not
//! rebuild the index from a scan.
//!
//! The engine writes it when it closes (and into checkpoints): the tables, the
//! vector definitions they were built for, and the RocksDB sequence number they
//! cover. On open, a snapshot is used only when its checksum holds, its
//! definitions are the catalog's and its sequence number is the database's
//! latest: then it covers every write. Otherwise it is ignored (a corrupt one
//! with a warning through the `log` facade) and the index is rebuilt from
//! RocksDB on first use. rust-rocksdb's WAL iterator does not report merge
//! operands, so a stale snapshot cannot be caught up from the log.
//!
//! Layout, little-endian: magic `PDBVIDX2`, u64 sequence number, u32 CRC32 of
//! the body, then the body: u32 table count, and per table u32 id, u32 dim, u32
//! row count, and per row the user id (u32 length + bytes), `dim` f32s and the
//! encoded attributes record (u32 length + bytes); then u8 1 when the table
//! has an IVF index, followed by its u32 lists, probes and re-rank factor,
//! u64 rows trained on, `lists · dim` f32 centroids, each row's u32 list in
//! row order, and u8 1 with its last measurement (u32 k, f64 recall, u32
//! queries, f64 queries/s, u32 probes, u8 metric, i64 time) or u8 0. A
//! `PDBVIDX1` file (no index sections) is read too. Written to a temporary
//! file and renamed, so a crash leaves either the old file or the new one.
//!
//! A restored index is checked as it is read (every list id in range,
//! finite centroids, one list per row); the engine retrains it when its
//! definition changed since.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use crate::codec::{Reader, Writer, derr};
use crate::error::{Error, Result};
use crate::merge::record::Record;
use crate::merge::vector::MAX_DIM;
use crate::row::UserRow;
use crate::vector::ivf::Centroids;
use crate::vector::{IndexTable, Ivf, IvfParams, Measurement, Metric};

/// The snapshot's file name in the database directory.
pub(crate) const FILE: &str = "vector-index.snapshot";
const MAGIC: &[u8; 8] = b"PDBVIDX2";
/// The layout before IVF indexes, still read.
const MAGIC_V1: &[u8; 8] = b"PDBVIDX1";

/// Tables by vector definition id, with the definitions (id, dim) they hold.
pub(crate) struct Snapshot {
    pub seq: u64,
    pub vectors: Vec<(u32, u32)>,
    pub tables: HashMap<u32, IndexTable>,
}

/// Writes `tables` as the snapshot for sequence number `seq` into `dir`.
pub(crate) fn write(dir: &Path, seq: u64, tables: &HashMap<u32, IndexTable>) -> Result<()> {
    let mut body = Writer::default();
    // Ids in order, so equal indexes write equal files.
    let mut ids: Vec<&u32> = tables.keys().collect();
    ids.sort_unstable();
    body.u32(u32::try_from(ids.len()).unwrap_or(u32::MAX));
    for id in ids {
        let t = &tables[id];
        body.u32(*id);
        body.u32(u32::try_from(t.table.dim()).unwrap_or(u32::MAX));
        body.u32(u32::try_from(t.table.len()).unwrap_or(u32::MAX));
        for (row, user, v) in t.table.iter() {
            body.bytes(user.as_bytes());
            for x in v {
                body.f32(*x);
            }
            let attrs = t
                .users
                .get(row)
                .and_then(Option::as_ref)
                .map(|u| u.attributes.encode())
                .unwrap_or_else(|| Record::default().encode());
            body.bytes(&attrs);
        }
        match &t.ivf {
            None => body.u8(0),
            Some(ivf) => {
                body.u8(1);
                let p = ivf.params();
                for x in [p.lists, p.probes, p.rerank] {
                    body.u32(u32::try_from(x).unwrap_or(u32::MAX));
                }
                body.u64(ivf.trained_on() as u64);
                for x in ivf.centroids().data() {
                    body.f32(*x);
                }
                let lists = ivf.assignment(t.table.rows());
                for (row, _, _) in t.table.iter() {
                    body.u32(lists[row]);
                }
                match ivf.measured() {
                    None => body.u8(0),
                    Some(m) => {
                        body.u8(1);
                        body.u32(u32::try_from(m.k).unwrap_or(u32::MAX));
                        body.f64(m.recall);
                        body.u32(u32::try_from(m.queries).unwrap_or(u32::MAX));
                        body.f64(m.qps);
                        body.u32(u32::try_from(m.probes).unwrap_or(u32::MAX));
                        body.u8(match m.metric {
                            Metric::Cosine => 0,
                            Metric::Dot => 1,
                            Metric::L2 => 2,
                        });
                        body.i64(m.at_ms);
                    }
                }
            }
        }
    }
    let body = body.finish();
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(MAGIC)?;
    f.write_all(&seq.to_le_bytes())?;
    f.write_all(&crc32fast::hash(&body).to_le_bytes())?;
    f.write_all(&body)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(FILE))?;
    Ok(())
}

/// Reads the snapshot in `dir`: `Ok(None)` when there is none.
///
/// # Errors
/// [`Error::Corruption`] when the file is truncated, fails its checksum or
/// does not decode; [`Error::Io`] when it cannot be read.
pub(crate) fn read(dir: &Path) -> Result<Option<Snapshot>> {
    let path = dir.join(FILE);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    // SAFETY: the map is only read while `map` lives, below. The file belongs to
    // this database directory, which RocksDB's lock keeps to this process; the
    // engine never writes the file in place (it renames a new one over it), so
    // the mapped bytes do not change underneath.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&file)? };
    let corrupt =
        |reason: &str| Error::corruption("vector index snapshot", FILE.as_bytes(), reason);
    let bytes: &[u8] = &map;
    if bytes.len() < 20 || (&bytes[..8] != MAGIC && &bytes[..8] != MAGIC_V1) {
        return Err(corrupt("not a vector index snapshot"));
    }
    let with_ivf = &bytes[..8] == MAGIC;
    let mut head = Reader::new(&bytes[8..20]);
    let seq = head.u64().map_err(|e| corrupt(&e.to_string()))?;
    let crc = head.u32().map_err(|e| corrupt(&e.to_string()))?;
    let body = &bytes[20..];
    if crc32fast::hash(body) != crc {
        return Err(corrupt("checksum mismatch"));
    }
    let mut r = Reader::new(body);
    let decode = |r: &mut Reader<'_>| -> std::result::Result<Snapshot, crate::DecodeError> {
        let n = r.u32()?;
        let mut vectors = Vec::new();
        let mut tables = HashMap::new();
        for _ in 0..n {
            let id = r.u32()?;
            let dim = r.u32()?;
            if dim as usize > MAX_DIM {
                return derr(format!("dimension {dim} is beyond the largest, {MAX_DIM}"));
            }
            let rows = r.u32()?;
            let mut t = IndexTable::new(dim as usize);
            let mut v = Vec::with_capacity(dim as usize);
            for _ in 0..rows {
                let user = r.str()?.to_owned();
                v.clear();
                for _ in 0..dim {
                    v.push(r.f32()?);
                }
                let attributes = Record::decode(r.bytes()?)?;
                let row = Arc::new(UserRow {
                    user,
                    attributes,
                    ..UserRow::default()
                });
                t.set(&row, Some(&v));
            }
            if with_ivf && r.u8()? == 1 {
                t.ivf = Some(read_ivf(r, &t, dim as usize)?);
            }
            vectors.push((id, dim));
            tables.insert(id, t);
        }
        r.end()?;
        Ok(Snapshot {
            seq,
            vectors,
            tables,
        })
    };
    decode(&mut r)
        .map(Some)
        .map_err(|e| corrupt(&e.to_string()))
}

/// An IVF section of a snapshot, over the table `t` just read.
fn read_ivf(
    r: &mut Reader<'_>,
    t: &IndexTable,
    dim: usize,
) -> std::result::Result<Ivf, crate::DecodeError> {
    let lists = r.u32()? as usize;
    let probes = r.u32()? as usize;
    let rerank = r.u32()? as usize;
    if lists == 0 || lists > crate::vector::ivf::MAX_LISTS || probes == 0 || rerank == 0 {
        return derr(format!(
            "index settings out of range: {lists} lists, {probes} probes, re-rank {rerank}"
        ));
    }
    let trained_on = r.u64()?;
    let mut data = Vec::with_capacity((lists * dim).min(r.remaining() / 4));
    for _ in 0..lists * dim {
        data.push(r.f32()?);
    }
    let centroids = Centroids::new(dim, data).or_else(derr)?;
    let mut assignment = Vec::with_capacity(t.table.rows());
    for _ in 0..t.table.rows() {
        let list = r.u32()?;
        if list as usize >= lists {
            return derr(format!("a row is in list {list} of {lists}"));
        }
        assignment.push(list);
    }
    let measured = match r.u8()? {
        0 => None,
        _ => Some(Measurement {
            k: r.u32()? as usize,
            recall: r.f64()?,
            queries: r.u32()? as usize,
            qps: r.f64()?,
            probes: r.u32()? as usize,
            metric: match r.u8()? {
                0 => Metric::Cosine,
                1 => Metric::Dot,
                2 => Metric::L2,
                m => return derr(format!("unknown metric {m}")),
            },
            at_ms: r.i64()?,
        }),
    };
    let params = IvfParams {
        lists,
        probes: probes.min(lists),
        rerank: rerank.min(crate::vector::ivf::MAX_RERANK),
    };
    let mut ivf = Ivf::from_assignment(params, centroids, &t.table, &assignment);
    ivf.set_trained_on(usize::try_from(trained_on).unwrap_or(usize::MAX));
    ivf.set_measured(measured);
    Ok(ivf)
}
