"""The embedded package against hand-computed values and naive models."""

import json
import math
import subprocess
import sys
import threading
import time

import pyarrow as pa
import pytest

import profiledb

DAY = 86_400_000
T0 = 1_761_991_200_000  # 2025-11-01T10:00:00Z


@pytest.fixture
def db(tmp_path):
    with profiledb.open(tmp_path / "db") as d:
        d.execute("CREATE EVENT purchase (amount FLOAT, item_vec VECTOR(3))")
        d.execute("CREATE FEATURE spend ON purchase AS DECAYED_SUM(amount) HALF_LIFE '7d'")
        d.execute("CREATE FEATURE purchases ON purchase AS COUNT()")
        d.execute("CREATE VECTOR taste ON purchase AS EWMA(item_vec) DIM 3 HALF_LIFE '7d'")
        yield d


def test_dicts_in_and_typed_arrow_out(db):
    n = db.ingest(
        [
            {"user": "u1", "type": "purchase", "ts": T0, "amount": 40.0, "item_vec": [1, 0, 0]},
            {"user": "u1", "type": "purchase", "ts": "2025-11-08T10:00:00Z", "amount": 60.0},
            {"user": "u2", "type": "purchase", "ts": T0, "amount": 5.0},
        ]
    )
    assert n == 3
    t = db.query(
        "SELECT id, spend, purchases, taste FROM users WHERE purchases >= $1 ORDER BY id AS OF $2",
        [1, T0 + 7 * DAY],
    )
    assert isinstance(t, pa.Table)
    assert t.schema.field("id").type == pa.string()
    assert t.schema.field("spend").type == pa.float64()
    assert t.schema.field("purchases").type == pa.int64()
    assert t.schema.field("taste").type == pa.list_(pa.float32(), 3)
    rows = t.to_pylist()
    assert [r["id"] for r in rows] == ["u1", "u2"]
    # 40 decayed over one half-life, plus 60 fresh; 5 over one half-life.
    assert rows[0]["spend"] == pytest.approx(40 / 2 + 60, rel=1e-12)
    assert rows[1]["spend"] == pytest.approx(5 / 2, rel=1e-12)
    assert rows[0]["purchases"] == 2
    assert rows[0]["taste"] == [1.0, 0.0, 0.0]
    assert rows[1]["taste"] is None


def test_pandas_and_arrow_ingest_equal_a_naive_model(db):
    pd = pytest.importorskip("pandas")
    users = [f"u{i % 7}" for i in range(200)]
    amounts = [float(i % 13) for i in range(200)]
    times = [T0 + i * 3_600_000 for i in range(200)]
    df = pd.DataFrame(
        {
            "user": users[:100],
            "type": ["purchase"] * 100,
            "ts": pd.to_datetime(times[:100], unit="ms", utc=True),
            "amount": amounts[:100],
            "item_vec": [[float(i), 1.0, 0.5] for i in range(100)],
        }
    )
    assert db.ingest(df) == 100
    table = pa.table(
        {
            "user": users[100:],
            "type": ["purchase"] * 100,
            "ts": pa.array(times[100:], pa.int64()),
            "amount": pa.array(amounts[100:], pa.float64()),
        }
    )
    assert db.ingest(table) == 100
    at = times[-1]
    expected = {}
    for u, a, t in zip(users, amounts, times):
        count, spend = expected.get(u, (0, 0.0))
        expected[u] = (count + 1, spend + a * 0.5 ** ((at - t) / (7 * DAY)))
    got = db.query("SELECT id, purchases, spend FROM users AS OF $1", [at]).to_pylist()
    assert {r["id"] for r in got} == set(expected)
    for r in got:
        count, spend = expected[r["id"]]
        assert r["purchases"] == count
        assert math.isclose(r["spend"], spend, rel_tol=1e-9)


def one_purchase_each(amounts, vectors):
    """A purchase at T0 by each of users u000000, u000001, ...: its
    amount and item vector (or None) from the lists given."""
    n = len(amounts)
    return pa.table(
        {
            "user": [f"u{i:06d}" for i in range(n)],
            "type": ["purchase"] * n,
            "ts": pa.array([T0] * n, pa.int64()),
            "amount": pa.array(amounts, pa.float64()),
            "item_vec": vectors,
        }
    )


def test_a_large_result_is_every_row_in_order_in_one_schema(db):
    # Enough rows for a batch a core (two chunks on two cores): the
    # table's chunks are the rows in order, each row its own values.
    n = 40_000
    table = one_purchase_each(
        [float(i % 100) for i in range(n)],
        [[float(i), 0.0, 1.0] if i % 2 else None for i in range(n)],
    )
    assert db.ingest(table) == n
    t = db.query("SELECT id, purchases, spend, taste FROM users ORDER BY id AS OF $1", [T0])
    assert t.num_rows == n
    assert t.schema.field("taste").type == pa.list_(pa.float32(), 3)
    ids = t.column("id").to_pylist()
    assert ids == [f"u{i:06d}" for i in range(n)]
    assert t.column("purchases").to_pylist() == [1] * n
    assert t.column("spend").to_pylist() == [float(i % 100) for i in range(n)]
    taste = t.column("taste").to_pylist()
    assert taste == [[float(i), 0.0, 1.0] if i % 2 else None for i in range(n)]
    # Without ORDER BY, the scan's parts are converted as they are made:
    # the same table, in id order.
    plain = db.query("SELECT id, purchases, spend, taste FROM users AS OF $1", [T0])
    assert plain.schema == t.schema
    assert plain.equals(t)


def test_a_scans_parts_without_vectors_take_the_columns_type(db):
    # The first 30,000 users have no vector: the scan's first parts hold
    # none, and still read as the fixed-size list the later parts make.
    n = 50_000
    table = one_purchase_each(
        [1.0] * n, [[1.0, float(i), 2.0] if i >= 30_000 else None for i in range(n)]
    )
    assert db.ingest(table) == n
    t = db.query("SELECT id, taste FROM users AS OF $1", [T0])
    assert t.schema.field("taste").type == pa.list_(pa.float32(), 3)
    assert t.column("id").to_pylist() == [f"u{i:06d}" for i in range(n)]
    taste = t.column("taste").to_pylist()
    assert taste == [[1.0, float(i), 2.0] if i >= 30_000 else None for i in range(n)]


def test_a_stream_of_several_batches_is_every_batchs_events(db):
    def batch(users, amounts):
        return pa.record_batch(
            {
                "user": pa.array(users, pa.string()),
                "type": pa.array(["purchase"] * len(users), pa.string()),
                "ts": pa.array([T0] * len(users), pa.int64()),
                "amount": pa.array(amounts, pa.float64()),
            }
        )

    batches = [batch([], []), batch(["a", "b"], [1.0, 2.0]), batch(["a", "c", "a"], [4.0, 8.0, 16.0])]
    assert db.ingest(pa.Table.from_batches(batches)) == 5
    got = db.query("SELECT id, purchases, spend FROM users ORDER BY id AS OF $1", [T0]).to_pylist()
    assert got == [
        {"id": "a", "purchases": 3, "spend": 21.0},
        {"id": "b", "purchases": 1, "spend": 2.0},
        {"id": "c", "purchases": 1, "spend": 8.0},
    ]
    # A bad event in a later batch is named by its index among all rows,
    # and nothing of the call is written.
    bad = [batch(["d", "e"], [1.0, 1.0]), batch(["d", "e"], [1.0, float("inf")])]
    with pytest.raises(profiledb.EventError) as e:
        db.ingest(pa.Table.from_batches(bad))
    assert (e.value.index, e.value.field) == (3, "amount")
    assert db.profile("d") is None


def test_statement_errors_carry_their_position(db):
    with pytest.raises(profiledb.StatementError) as e:
        db.query("SELECT id,\n  nosuch FROM users")
    assert e.value.line == 2
    assert e.value.column == 3
    assert "nosuch" in e.value.message
    assert isinstance(e.value, profiledb.Error)


def test_a_rejected_event_names_its_index_and_field_and_writes_nothing(db):
    db.ingest({"user": "u1", "type": "purchase", "ts": T0, "amount": 1.0})
    with pytest.raises(profiledb.EventError) as e:
        db.ingest(
            [
                {"user": "u1", "type": "purchase", "ts": T0, "amount": 2.0},
                {"user": "u1", "type": "purchase", "ts": T0, "amount": "lots"},
            ]
        )
    assert e.value.index == 1
    assert e.value.field == "amount"
    with pytest.raises(profiledb.EventError) as e:
        db.ingest(pa.table({"user": ["u1"], "type": ["purchase"], "ts": pa.array([None], pa.int64())}))
    assert (e.value.index, e.value.field) == (0, "ts")
    assert db.profile("u1", as_of=T0)["features"]["purchases"] == 1


def test_profiles_read_fields_and_missing_users(db):
    db.ingest({"user": "u1", "type": "purchase", "ts": T0, "amount": 8.0})
    p = db.profile("u1", as_of=T0 + 7 * DAY)
    assert p["user"] == "u1"
    assert p["features"]["spend"] == pytest.approx(4.0)
    only = db.profile("u1", as_of=T0, fields=["purchases"])
    assert only["features"] == {"purchases": 1}
    assert only["vectors"] == {}
    assert db.profiles(["nobody", "u1"], fields=["spend"])[0] is None
    assert db.profiles(["nobody", "u1"], fields=["spend"])[1]["user"] == "u1"
    with pytest.raises(profiledb.Error, match="did you mean 'spend'"):
        db.profile("u1", fields=["spnd"])


def test_profile_vectors_read_as_their_json_text(db):
    # One event, so the vector is the event's: float32 values, given as the
    # decimals their JSON text reads back as (not 0.1 widened from float32,
    # 0.10000000149011612), as GET /v1/users/{id} answers them.
    db.ingest({"user": "v", "type": "purchase", "ts": T0, "amount": 1.0, "item_vec": [0.1, -2.5, 1e-7]})
    assert db.profile("v")["vectors"]["taste"] == [0.1, -2.5, 1e-7]
    assert db.profiles(["v"], fields=["taste"])[0]["vectors"] == {"taste": [0.1, -2.5, 1e-7]}


def test_closed_database_refuses_calls(tmp_path):
    d = profiledb.open(tmp_path / "db")
    d.close()
    d.close()
    with pytest.raises(profiledb.Error, match="closed"):
        d.query("SELECT 1")


def test_cache_sizes_are_options_of_open_and_change_no_answer(tmp_path):
    events = [
        {"user": f"u{i % 5}", "type": "purchase", "ts": T0 + i * 60_000, "amount": float(i)}
        for i in range(300)
    ]
    want = {f"u{u}": sum(float(i) for i in range(300) if i % 5 == u) for u in range(5)}
    answers = []
    for options in ({}, {"block_cache_bytes": 1 << 20, "row_table_bytes": 0}):
        with profiledb.open(tmp_path / f"db{len(answers)}", **options) as d:
            d.execute("CREATE FEATURE total ON purchase AS SUM(amount)")
            assert d.ingest(events) == 300
            rows = d.query("SELECT id, total FROM users WHERE total > $1 ORDER BY id", [0]).to_pylist()
            assert {r["id"]: r["total"] for r in rows} == pytest.approx(want, rel=1e-12)
            answers.append((rows, d.profile("u3", as_of=T0 + DAY, fields=["total"])))
    assert answers[0] == answers[1]
    # A size that is not a byte count is refused before anything is made.
    for bad in ({"block_cache_bytes": -1}, {"row_table_bytes": "1GiB"}):
        with pytest.raises((OverflowError, TypeError)):
            profiledb.open(tmp_path / "refused", **bad)
        assert not (tmp_path / "refused").exists()


def test_the_gil_is_released_during_a_long_call(db):
    n = 300_000
    table = pa.table(
        {
            "user": [f"u{i % 50_000}" for i in range(n)],
            "type": ["purchase"] * n,
            "ts": pa.array([T0 + i for i in range(n)], pa.int64()),
            "amount": pa.array([1.0] * n),
        }
    )
    window = {}

    def ingest():
        window["start"] = time.perf_counter()
        db.ingest(table)
        window["end"] = time.perf_counter()

    worker = threading.Thread(target=ingest)
    ticks = []
    worker.start()
    while worker.is_alive():
        ticks.append(time.perf_counter())
    worker.join()
    inside = [t for t in ticks if window["start"] <= t <= window["end"]]
    span = window["end"] - window["start"]
    # Had the call held the GIL, this thread would have stood still for
    # all of it: the largest pause between its steps would be the call.
    edges = [window["start"], *inside, window["end"]]
    largest_pause = max(b - a for a, b in zip(edges, edges[1:]))
    assert len(inside) > 100
    assert largest_pause < span / 2
    assert db.query("SELECT count(*) AS n FROM users").to_pylist() == [{"n": 50_000}]


def test_rows_as_of_read_each_pair_at_its_own_time(db):
    hour = 3_600_000
    # Exact as of any time inside the history's horizon (off by default).
    db.execute("ALTER DATABASE SET HISTORY '30d'")
    now = int(time.time() * 1000)
    t = now - 5 * DAY  # inside the 30-day history
    bought = {"u1": [(t + i * hour, 10.0 * (i + 1)) for i in range(3)], "u2": [(t + hour, 7.5)]}
    db.ingest(
        [
            {"user": u, "type": "purchase", "ts": ts, "amount": a}
            for u, events in bought.items()
            for ts, a in events
        ]
    )
    pairs = [("u1", t + 90 * 60_000), ("u2", t), ("u1", t - 1), ("nobody", t), ("u1", now), ("u2", now)]
    got = db.rows_as_of("purchases, spend", pairs)
    assert got.column_names == ["user", "ts", "purchases", "spend"]
    assert got.column("user").to_pylist() == [u for u, _ in pairs]
    assert got.column("ts").to_pylist() == [at for _, at in pairs]

    def naive(user, at):
        seen = [(ts, a) for ts, a in bought.get(user, []) if ts <= at]
        if not seen:
            return None, None
        return len(seen), sum(a * 2 ** (-(at - ts) / (7 * DAY)) for ts, a in seen)

    for i, (user, at) in enumerate(pairs):
        count, spend = naive(user, at)
        assert got.column("purchases")[i].as_py() == count, (user, at)
        if spend is None:
            assert got.column("spend")[i].as_py() is None, (user, at)
        else:
            assert math.isclose(got.column("spend")[i].as_py(), spend, rel_tol=1e-12), (user, at)

    # The same pairs as a DataFrame with datetimes read the same rows.
    import pandas as pd

    frame = pd.DataFrame(
        {"user": [u for u, _ in pairs], "ts": pd.to_datetime([at for _, at in pairs], unit="ms", utc=True)}
    )
    assert db.rows_as_of("purchases, spend", frame).equals(got)
    # Bad pairs name what is wrong.
    with pytest.raises(ValueError, match="'ts'"):
        db.rows_as_of("spend", pd.DataFrame({"user": ["u1"]}))
    with pytest.raises(TypeError, match="pair 1"):
        db.rows_as_of("spend", [("u1", t), ("u2",)])
    with pytest.raises(profiledb.StatementError):
        db.rows_as_of("no_such_item", pairs)


PIN_CHECK = r"""
import json, os, sys
import profiledb

def allowed(status):
    line = next(l for l in status.splitlines() if l.startswith("Cpus_allowed_list:"))
    cores = set()
    for part in line.split(":", 1)[1].strip().split(","):
        a, _, b = part.partition("-")
        cores.update(range(int(a), int(b or a) + 1))
    return sorted(cores)

pinned = profiledb.pin_threads()
with profiledb.open(sys.argv[1]) as db:
    db.execute("CREATE EVENT view (page STRING)")
    db.execute("CREATE FEATURE views ON view AS COUNT()")
    db.ingest([{"user": f"u{i}", "type": "view", "ts": 1} for i in range(100)])
    db.query("SELECT count(*) FROM users WHERE views >= 1")  # a scan runs on the pool
pool = []
for task in os.listdir("/proc/self/task"):
    with open(f"/proc/self/task/{task}/comm") as f:
        if f.read().startswith("profiledb-pool-"):
            with open(f"/proc/self/task/{task}/status") as f:
                pool.append(allowed(f.read()))
try:
    profiledb.pin_threads()
    again = None
except profiledb.Error as e:
    again = str(e)
with open("/proc/self/status") as f:
    process = allowed(f.read())
print(json.dumps({"pinned": pinned, "pool": pool, "again": again,
                  "process": process, "cpus": os.cpu_count()}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_pin_threads_pins_one_pool_thread_to_each_core(tmp_path):
    # A fresh interpreter: nothing in it has built the engine's pool yet.
    out = subprocess.run(
        [sys.executable, "-c", PIN_CHECK, str(tmp_path / "db")],
        check=True, capture_output=True, text=True,
    )
    r = json.loads(out.stdout)
    assert r["again"] is not None and "already" in r["again"]
    # A CPU quota below the cores (cgroup v2 `cpu.max`) leaves the pool unpinned.
    quota = len(r["process"])
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            q, period = f.read().split()
        if q != "max":
            quota = max(1, int(q) // int(period))
    except (OSError, ValueError):
        pass
    if len(r["process"]) < 2 or quota < len(r["process"]):
        assert r["pinned"] is False
        return
    assert r["pinned"] is True
    assert sorted(r["pool"]) == [[c] for c in r["process"]]
