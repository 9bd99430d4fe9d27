"""profiledb.connect against a cluster's router: one nats-server, two nodes
(each owning half the partitions, no standbys) and a router, all started
here on loopback. Point-in-time rows, which the router asks of the node
answering for each user's partition, answer what the embedded database fed
the same events answers."""

import math
import socket
import subprocess
import time

import pytest

import profiledb
from conftest import _binary, _program

DAY = 86_400_000
SCHEMA = [
    "ALTER DATABASE SET HISTORY '30d'",
    "CREATE EVENT purchase (amount FLOAT, item_vec VECTOR(3))",
    "CREATE FEATURE spend ON purchase AS DECAYED_SUM(amount) HALF_LIFE '7d'",
    "CREATE FEATURE purchases ON purchase AS COUNT()",
    "CREATE VECTOR taste ON purchase AS EWMA(item_vec) DIM 3 HALF_LIFE '7d'",
]


def _nats_server() -> str:
    return _program("NATS_SERVER", "nats-server", "cluster")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(args):
    """A profiledb process that prints its address first, and that address."""
    proc = subprocess.Popen(
        [_binary(), *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    line = proc.stdout.readline().strip()
    if not line:
        proc.kill()
        raise RuntimeError(f"profiledb {args[0]} printed no address")
    return proc, f"http://{line}"


def _stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout:
        proc.stdout.close()


@pytest.fixture
def router(tmp_path):
    port = _free_port()
    nats = subprocess.Popen(
        [_nats_server(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(tmp_path / "nats")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs = []
    try:
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.time() < deadline, "nats-server did not listen"
                time.sleep(0.05)
        url = f"nats://127.0.0.1:{port}"
        subprocess.run(
            [_binary(), "cluster", "init", "--nats", url, "--partitions", "8", "--replicas", "0"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for name in ["a", "b"]:
            node, _ = _spawn(
                ["serve", "--db", str(tmp_path / name), "--listen", "127.0.0.1:0", "--nats", url, "--node", name]
            )
            procs.append(node)
        proc, address = _spawn(["router", "--nats", url, "--listen", "127.0.0.1:0"])
        procs.append(proc)
        yield address
    finally:
        for p in reversed(procs):
            _stop(p)
        nats.terminate()
        nats.wait(timeout=30)


def _until(what, check, seconds=30):
    """`check()`'s answer once it is truthy; a 503 (the cluster still
    forming) is asked again."""
    deadline = time.time() + seconds
    while True:
        try:
            got = check()
            if got:
                return got
        except profiledb.Error as e:
            if getattr(e, "status", None) != 503 or time.time() > deadline:
                raise
        assert time.time() < deadline, f"{what} did not happen in {seconds} s"
        time.sleep(0.2)


def test_rows_as_of_through_a_router_match_the_embedded_export(router, tmp_path):
    now = int(time.time() * 1000)
    t = now - 4 * DAY  # inside the 30-day history both keep
    users = [f"u{i}" for i in range(12)]
    events = [
        {"user": users[i % 12], "type": "purchase", "ts": t + i * 3_600_000, "amount": float(i + 1), "item_vec": [i, 1, 0]}
        for i in range(60)
    ]
    pairs = [(u, t + k * 20 * 3_600_000) for u in users for k in range(3)]
    pairs += [("nobody", t), ("u3", now)]
    with profiledb.connect(router) as remote:
        # Every partition followed by a live node, as the router sees it.
        _until("the cluster forming", lambda: remote.query("SELECT count(*) AS n FROM users").num_rows == 1)
        for stmt in SCHEMA:
            remote.execute(stmt)
        remote.ingest(events)
        # The router answers once the log holds the events; the nodes apply
        # them soon after.
        _until(
            "applying every event",
            lambda: remote.query("SELECT sum(purchases) AS n FROM users").column("n").to_pylist() == [60],
        )
        got = remote.rows_as_of("purchases, spend, taste", pairs)
        with pytest.raises(profiledb.Error, match="pair 1"):
            remote._json("POST", "/v1/rows_as_of", {"select": "spend", "pairs": [["u0", t], ["u1", "soon"]]})
    with profiledb.open(tmp_path / "local") as local:
        for stmt in SCHEMA:
            local.execute(stmt)
        local.ingest(events)
        want = local.rows_as_of("purchases, spend, taste", pairs)
    # The same rows, in the order of the pairs; a node sums a user's decayed
    # values in its own order, so floats agree to rounding.
    assert got.schema == want.schema
    assert got.num_rows == want.num_rows == len(pairs)
    for g, w in zip(got.to_pylist(), want.to_pylist()):
        assert (g["user"], g["ts"], g["purchases"]) == (w["user"], w["ts"], w["purchases"])
        assert (g["spend"] is None) == (w["spend"] is None), (g, w)
        assert g["spend"] is None or math.isclose(g["spend"], w["spend"], rel_tol=1e-12), (g, w)
        assert (g["taste"] is None) == (w["taste"] is None), (g, w)
        for a, b in zip(g["taste"] or [], w["taste"] or []):
            assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6), (g, w)
    # u0 bought at t, t + 12 h, t + 24 h, …: by t + 20 h twice.
    assert got.column("purchases").to_pylist()[:3] == [1, 2, 4]
