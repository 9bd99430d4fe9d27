"""import_file (Parquet, CSV, JSON Lines, gzip), Ctrl-C and the notebook
display, against values computed here."""

import _thread
import gzip
import json
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import profiledb

T0 = 1_761_991_200_000  # 2025-11-01T10:00:00Z


@pytest.fixture
def db(tmp_path):
    with profiledb.open(tmp_path / "db") as d:
        d.execute("CREATE FEATURE spend ON purchase AS SUM(amount)")
        d.execute("CREATE FEATURE purchases ON purchase AS COUNT()")
        d.execute("CREATE VECTOR taste ON purchase AS EWMA(item_vec) DIM 2 HALF_LIFE '7d'")
        yield d


def events_table(n):
    return pa.table(
        {
            "userId": [f"u{i % 9}" for i in range(n)],
            "type": ["purchase"] * n,
            "ts": pa.array([(T0 + i) * 1000 for i in range(n)], pa.timestamp("us", tz="UTC")),
            "amount": pa.array([None if i % 5 == 0 else i * 0.5 for i in range(n)], pa.float64()),
            "item_vec": pa.array([[1.0, float(i % 3)] for i in range(n)], pa.list_(pa.float32(), 2)),
        }
    )


def naive(n):
    spend, count = {}, {}
    for i in range(n):
        u = f"u{i % 9}"
        count[u] = count.get(u, 0) + 1
        spend[u] = spend.get(u, 0.0) + (0.0 if i % 5 == 0 else i * 0.5)
    return spend, count


@pytest.mark.parametrize("compression", ["snappy", "zstd", "gzip", "none"])
def test_parquet_round_trip(db, tmp_path, compression):
    n = 5000
    path = tmp_path / f"events.{compression}.parquet"
    pq.write_table(events_table(n), path, compression=compression, row_group_size=1234)
    out = db.import_file(path, rename={"userId": "user"})
    assert out == {"written": n, "duplicates": 0, "rejected": []}
    spend, count = naive(n)
    result = db.query("SELECT id, spend, purchases, taste FROM users ORDER BY id")
    # The result goes out as Parquet and comes back the same.
    pq.write_table(result, tmp_path / "out.parquet")
    back = pq.read_table(tmp_path / "out.parquet")
    assert back.equals(result)
    assert back.schema.field("taste").type == pa.list_(pa.float32(), 2)
    for row in back.to_pylist():
        assert row["purchases"] == count[row["id"]]
        assert row["spend"] == pytest.approx(spend[row["id"]], rel=1e-12)
        assert row["taste"][0] == pytest.approx(1.0)


def test_csv_jsonl_and_gzip_files(db, tmp_path):
    csv_path = tmp_path / "e.csv"
    csv_path.write_text("user,type,ts,amount\r\nu1,purchase,1761991200000,2.5\r\nu2,purchase,1761991200000,4\r\n")
    jsonl = tmp_path / "e.jsonl.gz"
    with gzip.open(jsonl, "wt") as f:
        f.write(json.dumps({"user": "u1", "type": "purchase", "ts": "2025-11-01T11:00:00Z", "amount": 1.5}) + "\n")
    out = db.import_file([csv_path, jsonl])
    assert out["written"] == 3
    got = db.query("SELECT id, spend FROM users ORDER BY id").to_pylist()
    assert got == [{"id": "u1", "spend": 4.0}, {"id": "u2", "spend": 4.0}]


def test_bad_lines_write_nothing_unless_skipped(db, tmp_path):
    path = tmp_path / "e.csv"
    path.write_text(
        "user,type,ts,amount\n"
        "u1,purchase,1761991200000,1\n"
        "u2,purchase,1761991200000,lots\n"
        "u3,purchase,1761991200,3\n"
    )
    with pytest.raises(profiledb.EventError) as e:
        db.import_file(path)
    err = e.value
    assert (err.file, err.line, err.field) == (str(path), 3, "amount")
    assert [line for _, line, _ in err.rejected] == [3, 4]
    assert "looks like epoch seconds" in err.rejected[1][2]
    assert db.query("SELECT count(*) AS n FROM users").to_pylist() == [{"n": 0}]
    out = db.import_file(path, skip_bad=True)
    assert out["written"] == 1
    assert [line for _, line, _ in out["rejected"]] == [3, 4]
    with pytest.raises(profiledb.Error, match="cannot read"):
        db.import_file(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="not a format"):
        db.import_file(path, format="xml")


def test_ctrl_c_cancels_a_running_import(db, tmp_path):
    # Big enough that checking it takes far longer than the interrupt's delay.
    path = tmp_path / "big.jsonl"
    line = '{"user":"u%d","type":"purchase","ts":1761991200000,"amount":1.0}\n'
    with open(path, "w") as f:
        for chunk in range(100):
            f.write("".join(line % (chunk * 10_000 + i) for i in range(10_000)))
    timer = threading.Timer(0.05, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        db.import_file(path)
    timer.join()
    # Interrupted while checking: nothing was written, and the database
    # takes statements again.
    assert db.query("SELECT count(*) AS n FROM users").to_pylist() == [{"n": 0}]
    db.ingest({"user": "u1", "type": "purchase", "ts": T0, "amount": 1.0})
    assert db.query("SELECT count(*) AS n FROM users").to_pylist() == [{"n": 1}]


def test_a_result_shows_as_an_html_table():
    t = pa.table({"id": ["<u1>", "u2"], "spend": [1.5, None], "taste": pa.array([[1.0, 2.0], None], pa.list_(pa.float32(), 2))})
    html = profiledb.table_html(t)
    assert "<th>id<br><small>string</small></th>" in html
    assert "<td>&lt;u1&gt;</td>" in html
    assert '<td style="text-align: right">1.5</td>' in html
    assert html.count("NULL") == 2
    assert "<td>[1.0, 2.0]</td>" in html
    assert "2 rows" in html
    many = pa.table({"n": list(range(100))})
    shown = profiledb.table_html(many, max_rows=10)
    # The header, five rows, the gap, five rows.
    assert shown.count("<tr>") == 1 + 5 + 1 + 5
    assert "…" in shown
    assert ">0<" in shown and ">99<" in shown and ">50<" not in shown
    assert "100 rows" in shown


def test_ctrl_c_cancels_a_running_statement(tmp_path):
    # k-means into 1,000 clusters over 100k users of 16 dimensions runs for
    # about a second on a fast machine (into 200 it took 0.2–0.3 s, and
    # could end before an interrupt 0.3 s in); the interrupt comes 0.1 s in.
    n, dim = 100_000, 16
    flat = [float((i * 7919) % 1000) / 1000.0 for i in range(n * dim)]
    table = pa.table(
        {
            "user": [f"u{i}" for i in range(n)],
            "type": ["view"] * n,
            "ts": pa.array([T0] * n, pa.int64()),
            "v": pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dim),
        }
    )
    with profiledb.open(tmp_path / "db") as db:
        db.execute("CREATE VECTOR taste ON view AS EWMA(v) DIM 16 HALF_LIFE '7d'")
        db.ingest(table)
        timer = threading.Timer(0.1, _thread.interrupt_main)
        timer.start()
        with pytest.raises(KeyboardInterrupt) as e:
            db.query("CLUSTER users BY taste INTO 1000")
        timer.join()
        # Raised from inside the call, not after it returned.
        assert e.traceback[-1].name == "query"
        # The interrupt is over: the next statement runs to its end.
        assert db.query("SELECT count(*) AS n FROM users").to_pylist() == [{"n": n}]
