"""Benchmarks of the Python package (figures for the README and issue notes).

    pip install ./python
    python python/bench/bench.py [--events 1000000]

Measures, on the ingest bench's workload (100k users; every event updates a
count, a sum, a decayed sum, a decayed average, an hourly window and a
16-dimension ewma vector):
- ingest of one pyarrow Table of 1M events into a new database, events/s;
- a query returning 1M rows (one per user) to a pyarrow Table, seconds;
- ``db.profile()`` of random users, latency percentiles.
The Rust library's figures for the same work are ``cargo bench --bench arrow``.
"""

import argparse
import random
import statistics
import tempfile
import time

import numpy as np
import pyarrow as pa

import profiledb

DAY = 86_400_000
DIM = 16
SCHEMA = """
CREATE FEATURE views ON view AS COUNT();
CREATE FEATURE spend ON view AS SUM(price);
CREATE FEATURE spend_7d ON view AS DECAYED_SUM(price) HALF_LIFE '7d';
CREATE FEATURE price_avg ON view AS DECAYED_AVG(price) HALF_LIFE '30d';
CREATE WINDOW views_hourly ON view BUCKET '1h' RETAIN '30d';
CREATE VECTOR taste ON view AS EWMA(item_vec) DIM 16 HALF_LIFE '14d';
"""


def t0() -> int:
    now = int(time.time() * 1000)
    return now // DAY * DAY - 29 * DAY


def table(n: int, users: int, seed: int, distinct: bool = False) -> pa.Table:
    rng = np.random.default_rng(seed)
    ids = np.arange(n) if distinct else rng.integers(0, users, n)
    user = pa.array([f"user{u:07d}" for u in ids.tolist()])
    ts = t0() + (np.arange(n, dtype=np.int64) * 997) % (30 * DAY)
    flat = rng.uniform(-1.0, 1.0, n * DIM).astype(np.float32)
    return pa.table(
        {
            "user": user,
            "type": pa.array(["view"] * n),
            "ts": pa.array(ts, pa.int64()),
            "price": pa.array(rng.uniform(1.0, 200.0, n)),
            "item_vec": pa.FixedSizeListArray.from_arrays(pa.array(flat), DIM),
        }
    )


def fresh(path: str, block_cache_bytes: int | None = None) -> profiledb.Database:
    db = profiledb.open(path, block_cache_bytes=block_cache_bytes)
    db.execute("ALTER DATABASE SET HISTORY '0s'")
    for stmt in SCHEMA.strip().split(";"):
        if stmt.strip():
            db.execute(stmt)
    return db


def disk_reads() -> int:
    """Bytes this process has read from storage rather than the page cache
    (Linux; 0 elsewhere): the reads of blocks neither cache held."""
    try:
        with open("/proc/self/io") as f:
            for line in f:
                if line.startswith("read_bytes:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--settle", type=float, default=30.0)
    ap.add_argument(
        "--block-cache-mib",
        type=int,
        default=None,
        help="the block cache of the database the queries and profiles read (default: the package's)",
    )
    args = ap.parse_args()
    n = args.events

    events = table(n, 100_000, 7)
    rates = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as d:
            db = fresh(d)
            start = time.perf_counter()
            assert db.ingest(events) == n
            rates.append(n / (time.perf_counter() - start))
            db.close()
    print(f"ingest of a {n}-event pyarrow Table: " + ", ".join(f"{r:,.0f}" for r in rates) + " events/s")

    with tempfile.TemporaryDirectory() as d:
        cache = None if args.block_cache_mib is None else args.block_cache_mib << 20
        db = fresh(d, cache)
        one_each = table(n, n, 8, distinct=True)
        db.ingest(one_each)
        db.flush()
        # The first queries after a bulk ingest pay for merging what it
        # wrote until the store settles (a few seconds); both are shown.
        times = []
        for _ in range(args.runs + 3):
            start = time.perf_counter()
            t = db.query("SELECT id, views, spend, spend_7d, taste FROM users")
            times.append(time.perf_counter() - start)
            assert t.num_rows == n
        print(f"query of {n} rows to a pyarrow Table, in turn after the ingest: " + ", ".join(f"{s:.3f}" for s in times) + " s")

        # Random users of the million, then the same users again (their
        # blocks in the cache); then, once the store has had `--settle`
        # seconds to compact what the ingest wrote, random users again.
        ids = [f"user{random.randrange(n):07d}" for _ in range(50_000)]
        clock = time.perf_counter_ns
        for name in ("random users", "the same users again", "random users, settled"):
            if name.endswith("settled"):
                time.sleep(args.settle)
                ids = [f"user{random.randrange(n):07d}" for _ in range(50_000)]
            lat = [0] * len(ids)
            read_before = disk_reads()
            for i, u in enumerate(ids):
                start = clock()
                db.profile(u)
                lat[i] = clock() - start
            read = disk_reads() - read_before
            lat.sort()
            q = lambda p: lat[int(p * (len(lat) - 1))] / 1000  # noqa: E731
            print(
                f"db.profile() of {len(lat)} {name}: p50 {q(0.5):.1f} µs, p99 {q(0.99):.1f} µs, "
                f"p99.9 {q(0.999):.1f} µs, mean {statistics.fmean(lat) / 1000:.1f} µs; "
                f"{read / 1e6:.1f} MB read from disk"
            )
        db.close()


if __name__ == "__main__":
    main()
