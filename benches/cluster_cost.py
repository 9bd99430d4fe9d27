#!/usr/bin/env python3
"""The cost of a cluster, measured whole: CPU seconds per event of ingest
through `profiledb router` (router, node and nats-server together) against
one `profiledb serve` fed the same requests, and the latency of point reads
through the router against the node itself.

    PROFILEDB_BIN=target/debug/profiledb NATS_SERVER=.venv/bin/nats-server \
        python3 benches/cluster_cost.py [--events 200000]

Build the binary optimised for figures worth reporting
(`CARGO_PROFILE_DEV_OPT_LEVEL=3 cargo build --profile dev`). Standard library
only; each process's CPU is read from /proc/<pid>/stat.
"""

import argparse
import http.client
import json
import os
import socket
import subprocess
import tempfile
import time

TICK = os.sysconf("SC_CLK_TCK")
SCHEMA = """CREATE FEATURE n ON view AS COUNT();
CREATE FEATURE total ON view AS SUM(price);
CREATE FEATURE recent ON view AS DECAYED_SUM(price) HALF_LIFE '7d';
CREATE WINDOW hourly ON view OF price BUCKET '1h' RETAIN '7d';
CREATE VECTOR taste ON view AS EWMA(v) DIM 16 HALF_LIFE '7d'"""


def cpu(pid):
    """User + system CPU seconds of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(args):
    """Starts the binary; its first line is the address it serves."""
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    addr = p.stdout.readline().strip()
    return p, addr


def request(addr, method, path, body=None):
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=120)
    c.request(method, path, body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status != 200:
        raise RuntimeError(f"{method} {path}: {r.status} {data[:300]!r}")
    return json.loads(data)


def batches(events, users, size):
    out = []
    for start in range(0, events, size):
        rows = []
        for i in range(start, min(events, start + size)):
            rows.append({
                "user": f"user{(i * 7919) % users:07d}",
                "type": "view",
                "ts": 1_761_991_200_000 + i * 10,
                "price": float(i % 97) + 0.5,
                "v": [((i * (d + 3)) % 17) / 17.0 for d in range(16)],
                "event_id": f"e{i}",
            })
        out.append(json.dumps(rows))
    return out


def latencies(addr, paths):
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    out = []
    for path in paths:
        t = time.perf_counter()
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        out.append(time.perf_counter() - t)
        if r.status != 200:
            raise RuntimeError(f"GET {path}: {r.status}")
    c.close()
    out.sort()
    return out[len(out) // 2], out[int(len(out) * 0.99)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--reads", type=int, default=5_000)
    a = ap.parse_args()
    binary = os.environ.get("PROFILEDB_BIN", "target/debug/profiledb")
    nats_bin = os.environ.get("NATS_SERVER", "nats-server")
    bodies = batches(a.events, a.users, a.batch)
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        nats = subprocess.Popen(
            [nats_bin, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", f"{tmp}/nats"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs = [nats]
        try:
            url = f"nats://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port)).close()
                    break
                except OSError:
                    time.sleep(0.05)
            subprocess.run([binary, "cluster", "init", "--nats", url, "--partitions", "64",
                            "--replicas", "0", "--stream-replicas", "1"],
                           check=True, stdout=subprocess.DEVNULL)
            node, node_addr = spawn([binary, "serve", "--db", f"{tmp}/node", "--nats", url,
                                     "--node", "a", "--listen", "127.0.0.1:0"])
            procs.append(node)
            one, one_addr = spawn([binary, "serve", "--db", f"{tmp}/one", "--listen", "127.0.0.1:0"])
            procs.append(one)
            router, router_addr = spawn([binary, "router", "--nats", url, "--listen", "127.0.0.1:0"])
            procs.append(router)
            time.sleep(2)
            # The schema through the log (the router answers once the node applied it).
            for addr in (router_addr, one_addr):
                request(addr, "POST", "/v1/query", json.dumps({"sql": SCHEMA}))

            # One server, fed the requests directly.
            before, t = cpu(one.pid), time.perf_counter()
            for body in bodies:
                request(one_addr, "POST", "/v1/events", body)
            one_wall, one_cpu = time.perf_counter() - t, cpu(one.pid) - before

            # Through the router, until the node has applied the last sequence.
            watched = [router, node, nats]
            before = [cpu(p.pid) for p in watched]
            t = time.perf_counter()
            seq = 0
            for body in bodies:
                seq = max(seq, request(router_addr, "POST", "/v1/events", body)["seq"])
            acked = time.perf_counter() - t
            out = request(router_addr, "POST", "/v1/query",
                          json.dumps({"sql": "SELECT count(*), sum(n) FROM users", "min_seq": seq}))
            wall = time.perf_counter() - t
            spent = [cpu(p.pid) - b for p, b in zip(watched, before)]
            assert out["rows"][0][1] == a.events, out

            n = a.events
            print(f"{n} events, {a.users} users, batches of {a.batch}")
            print(f"one server:  {n / one_wall:,.0f} events/s, {one_cpu / n * 1e6:.1f} us CPU/event")
            print(f"through the router on one node: {n / wall:,.0f} events/s applied "
                  f"({n / acked:,.0f}/s acknowledged), CPU/event: router {spent[0] / n * 1e6:.1f} us, "
                  f"node {spent[1] / n * 1e6:.1f} us, nats-server {spent[2] / n * 1e6:.1f} us, "
                  f"total {sum(spent) / n * 1e6:.1f} us ({sum(spent) / one_cpu:.2f}x one server)")

            paths = [f"/v1/users/user{(i * 31) % a.users:07d}" for i in range(a.reads)]
            p50, p99 = latencies(node_addr, paths)
            print(f"point reads from the node:    p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms")
            p50, p99 = latencies(router_addr, paths)
            print(f"point reads through the router: p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms")

            # What a user costs a node: resident memory and disk after ingest.
            with open(f"/proc/{node.pid}/status") as f:
                rss = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:"))
            disk = sum(os.path.getsize(os.path.join(d, f))
                       for d, _, files in os.walk(f"{tmp}/node") for f in files)
            print(f"node after ingest: {rss / a.users:,.0f} bytes resident and "
                  f"{disk / a.users:,.0f} bytes on disk per user "
                  f"({a.events // a.users} events each, history kept)")
        finally:
            for p in procs:
                p.kill()
                p.wait()


if __name__ == "__main__":
    main()
