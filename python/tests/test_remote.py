"""profiledb.connect against a real server started by the test: the same
methods and answers as the embedded database, checked against values
computed here."""

import json
import threading

import pyarrow as pa
import pytest

import profiledb

DAY = 86_400_000
T0 = 1_761_991_200_000  # 2025-11-01T10:00:00Z

SCHEMA = [
    "CREATE EVENT purchase (amount FLOAT, item_vec VECTOR(3))",
    "CREATE FEATURE spend ON purchase AS DECAYED_SUM(amount) HALF_LIFE '7d'",
    "CREATE FEATURE purchases ON purchase AS COUNT()",
    "CREATE VECTOR taste ON purchase AS EWMA(item_vec) DIM 3 HALF_LIFE '7d'",
]


@pytest.fixture
def remote(server):
    with profiledb.connect(server.url, token="secret") as r:
        for stmt in SCHEMA:
            assert r.execute(stmt).startswith("CREATE")
        yield r


def test_a_wrong_token_is_refused(server):
    with profiledb.connect(server.url, token="wrong") as r:
        with pytest.raises(profiledb.Error) as e:
            r.query("SELECT 1")
    assert e.value.status == 401


def test_dicts_pandas_and_arrow_in_typed_tables_out(remote):
    pd = pytest.importorskip("pandas")
    assert remote.ingest({"user": "u1", "type": "purchase", "ts": T0, "amount": 40.0, "item_vec": [1, 0, 0]}) == 1
    df = pd.DataFrame(
        {
            "user": ["u1", "u2"],
            "type": ["purchase", "purchase"],
            "ts": pd.to_datetime([T0 + 7 * DAY, T0], unit="ms", utc=True),
            "amount": [60.0, 5.0],
        }
    )
    assert remote.ingest(df) == 2
    table = pa.table(
        {
            "user": ["u3"],
            "type": ["purchase"],
            "ts": pa.array([T0], pa.int64()),
            "item_vec": pa.array([[0.0, 1.0, 0.0]], pa.list_(pa.float32(), 3)),
        }
    )
    assert remote.ingest(table) == 1
    t = remote.query(
        "SELECT id, spend, purchases, taste FROM users WHERE purchases >= $1 ORDER BY id AS OF $2",
        [1, T0 + 7 * DAY],
    )
    assert t.schema.field("spend").type == pa.float64()
    assert t.schema.field("purchases").type == pa.int64()
    assert t.schema.field("taste").type == pa.list_(pa.float32(), 3)
    rows = t.to_pylist()
    assert [r["id"] for r in rows] == ["u1", "u2", "u3"]
    assert rows[0]["spend"] == pytest.approx(40 / 2 + 60, rel=1e-12)
    assert rows[1]["spend"] == pytest.approx(5 / 2, rel=1e-12)
    assert rows[0]["purchases"] == 2
    assert rows[0]["taste"] == [1.0, 0.0, 0.0]
    assert rows[2]["taste"] == [0.0, 1.0, 0.0]
    assert remote.execute("SELECT count(*) AS n FROM users").to_pylist() == [{"n": 3}]


def test_a_parameter_is_a_value_never_sql(remote):
    remote.ingest([{"user": "a", "type": "purchase", "ts": T0, "amount": 1.0}, {"user": "b", "type": "purchase", "ts": T0, "amount": 2.0}])
    hostile = "x' OR id != '"
    assert remote.query("SELECT id FROM users WHERE id = $1", [hostile]).num_rows == 0
    assert remote.query("SELECT id FROM users WHERE id = $1", ["b"]).to_pylist() == [{"id": "b"}]


def test_errors_carry_positions_and_indexes(remote):
    with pytest.raises(profiledb.StatementError) as e:
        remote.query("SELECT id,\n  nosuch FROM users")
    assert (e.value.line, e.value.column) == (2, 3)
    assert "nosuch" in e.value.message
    with pytest.raises(profiledb.EventError) as e:
        remote.ingest(
            [
                {"user": "u1", "type": "purchase", "ts": T0, "amount": 2.0},
                {"user": "u1", "type": "purchase", "ts": T0, "amount": "lots"},
            ]
        )
    assert (e.value.index, e.value.field) == (1, "amount")
    # Nothing of the refused request was written.
    assert remote.profile("u1") is None
    # A value that is not an event is named here, before anything is sent.
    with pytest.raises(profiledb.EventError) as e:
        remote.ingest([{"user": "u1", "type": "purchase", "ts": T0}, {"user": "u1", "ts": T0}])
    assert (e.value.index, e.value.field) == (1, "type")


def test_profiles_match_the_embedded_reads(remote, tmp_path):
    events = [
        {"user": f"u{i % 5}", "type": "purchase", "ts": T0 + i * 3_600_000, "amount": float(i), "item_vec": [i, 1, 0]}
        for i in range(40)
    ]
    remote.ingest(events)
    at = T0 + 3 * DAY
    with profiledb.open(tmp_path / "local") as local:
        for stmt in SCHEMA:
            local.execute(stmt)
        local.ingest(events)
        for fields in (None, ["spend", "segments"]):
            assert remote.profile("u3", as_of=at, fields=fields) == local.profile("u3", as_of=at, fields=fields)
        ids = ["u0", "nobody", "u4"] + [f"u{i % 5}" for i in range(1500)]
        got = remote.profiles(ids, as_of=at, fields=["purchases"])
        assert got == local.profiles(ids, as_of=at, fields=["purchases"])
    assert got[1] is None
    assert got[0]["features"]["purchases"] == 8
    assert remote.profile("nobody") is None
    # An id with characters a path would mangle.
    remote.ingest({"user": "a/b c?d", "type": "purchase", "ts": T0, "amount": 1.0})
    assert remote.profile("a/b c?d")["user"] == "a/b c?d"
    assert remote.delete_user("a/b c?d") is True
    assert remote.delete_user("a/b c?d") is False


def test_import_file_sends_checked_batches(remote, tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(
        "".join(
            json.dumps({"user": f"u{i % 3}", "type": "purchase", "ts": T0, "amount": float(i)}) + "\n"
            for i in range(25_000)
        )
    )
    out = remote.import_file(good)
    assert out == {"written": 25_000, "duplicates": 0, "rejected": []}
    sums = {f"u{k}": float(sum(i for i in range(25_000) if i % 3 == k)) for k in range(3)}
    got = remote.query("SELECT id, spend FROM users AS OF $1", [T0]).to_pylist()
    assert {r["id"]: r["spend"] for r in got} == sums

    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"user":"v1","type":"purchase","ts":1761991200000,"amount":1}\n'
        '{"user":"v2","type":"purchase","ts":1761991200000,"amount":"lots"}\n'
        "not json\n"
    )
    # A line that is not JSON is found here; nothing is sent.
    with pytest.raises(profiledb.EventError) as e:
        remote.import_file(bad)
    assert (e.value.file, e.value.line) == (str(bad), 3)
    assert remote.profile("v1") is None
    # With skip_bad the server judges the rest: v2's amount is refused there.
    out = remote.import_file(bad, skip_bad=True)
    assert out["written"] == 1
    assert [(f, line) for f, line, _ in out["rejected"]] == [(str(bad), 2), (str(bad), 3)]
    assert "amount" in out["rejected"][0][2]


def test_threads_share_a_client(remote):
    errors = []

    def work(k):
        try:
            for i in range(20):
                remote.ingest({"user": f"t{k}", "type": "purchase", "ts": T0 + i, "amount": 1.0})
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = remote.query("SELECT id, purchases FROM users ORDER BY id").to_pylist()
    assert rows == [{"id": f"t{k}", "purchases": 20} for k in range(4)]


def test_a_closed_client_refuses_calls(server):
    r = profiledb.connect(server.url, token="secret")
    r.close()
    with pytest.raises(profiledb.Error, match="closed"):
        r.query("SELECT 1")
    with pytest.raises(ValueError):
        profiledb.connect("localhost:7070")


def test_rows_as_of_match_the_embedded_export(remote, tmp_path):
    import time

    now = int(time.time() * 1000)
    t = now - 4 * DAY  # inside the 30-day history both keep
    events = [
        {"user": f"u{i % 3}", "type": "purchase", "ts": t + i * 3_600_000, "amount": float(i + 1), "item_vec": [i, 1, 0]}
        for i in range(30)
    ]
    pairs = [("u0", t + 5 * 3_600_000), ("nobody", t), ("u2", t - 1), ("u1", now), ("u0", t + 20 * 3_600_000)]
    remote.execute("ALTER DATABASE SET HISTORY '30d'")
    remote.ingest(events)
    with profiledb.open(tmp_path / "local") as local:
        local.execute("ALTER DATABASE SET HISTORY '30d'")
        for stmt in SCHEMA:
            local.execute(stmt)
        local.ingest(events)
        want = local.rows_as_of("purchases, spend, taste", pairs)
    got = remote.rows_as_of("purchases, spend, taste", pairs)
    assert got.equals(want), (got.to_pylist(), want.to_pylist())
    # u0 bought at t, t+3h, ... so by t+5h twice.
    assert got.column("purchases").to_pylist()[:3] == [2, None, None]
    with pytest.raises(profiledb.StatementError):
        remote.rows_as_of("no_such_item", pairs)
    with pytest.raises(profiledb.Error, match="pair 0"):
        remote._json("POST", "/v1/rows_as_of", {"select": "spend", "pairs": [["u0", "yesterday"]]})
