"""Fixtures shared by the suites: a real server started by the test."""

import os
import shutil
import subprocess

import pytest


def _program(variable: str, name: str, what: str) -> str:
    """The program `variable` names, or `name` on PATH; fails the test
    (saying how to get it) when neither is there."""
    path = os.environ.get(variable) or shutil.which(name)
    if not path or not os.access(path, os.X_OK):
        pytest.fail(
            f"the {what} tests need the {name} program: set {variable} "
            "(make python-test does) or put it on PATH"
        )
    return path


def _binary() -> str:
    return _program("PROFILEDB_BIN", "profiledb", "server")


class Server:
    """`profiledb serve` on a free loopback port, stopped by the fixture."""

    def __init__(self, db_dir, token=None, extra=()):
        args = [_binary(), "serve", "--db", str(db_dir), "--listen", "127.0.0.1:0", *extra]
        env = dict(os.environ)
        env.pop("PROFILEDB_TOKEN", None)
        if token:
            args += ["--token", token]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True
        )
        line = self.proc.stdout.readline().strip()
        if not line:
            self.proc.kill()
            raise RuntimeError("the server printed no address")
        self.url = f"http://{line}"

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "served", token="secret")
    yield s
    s.stop()
