"""The client of a running ``profiledb serve``: the methods of
:class:`profiledb.Database`, over its HTTP API.

Answers are decoded by the same native code as the embedded database's
(``read_answer``), so a query gives the same ``pyarrow.Table``, with the
same column types, either way; events are encoded by the embedded
``ingest``'s decoders, so a bad one is named by its index before anything
is sent. Only the standard library's ``http.client`` is used: one
keep-alive connection per thread.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.parse
from http.client import HTTPConnection, HTTPException, HTTPResponse, HTTPSConnection
from typing import Any, Iterable, Mapping, Sequence

from . import _args
from ._profiledb import (
    CancelledError,
    Error,
    EventBatches,
    EventError,
    NotFoundError,
    StatementError,
    events_json,
    read_answer,
    to_json,
)

# Most ids one POST /v1/profiles takes.
_BATCH_READ = 1000
_PAIRS = 100_000  # the server's MAX_PAIRS
# A connection idle this long is replaced rather than reused: the server
# closes idle connections (30 s by default), and a request sent as it does
# would be lost without an answer.
_STALE_AFTER_S = 5.0


def _error(status: int, body: bytes) -> Error:
    """The exception for an error answer ``{"error": {...}}``."""
    try:
        e = json.loads(body)["error"]
        message = e["message"]
    except (ValueError, KeyError, TypeError):
        text = body.decode("utf-8", "replace").strip()
        return Error(f"the server answered {status}: {text or 'no body'}")
    if "line" in e:
        err: Error = StatementError(message)
        err.line, err.column = e.get("line"), e.get("column")
    elif "index" in e:
        err = EventError(message)
        err.index, err.field = e.get("index"), e.get("field")
    elif e.get("code") == "statement_timeout":
        err = CancelledError(message)
    elif status == 404:
        err = NotFoundError(message)
    else:
        err = Error(message)
    err.message = message
    err.status = status
    return err


class Remote:
    """A running server, reached over HTTP: see :func:`profiledb.connect`.
    Methods may be called from several threads at once (each has its own
    connection)."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"a server URL is http://HOST:PORT, not {url!r}")
        self._url = url.rstrip("/")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._base = parts.path.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._local = threading.local()
        # Every thread's connection, for close().
        self._conns: list[HTTPConnection] = []
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<profiledb.Remote {self._url!r} ({state})>"

    def __enter__(self) -> "Remote":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes every thread's connection; later calls raise :class:`Error`."""
        self._closed = True
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()

    # The HTTP exchange.

    def _connection(self) -> HTTPConnection:
        conn = getattr(self._local, "conn", None)
        last = getattr(self._local, "last", 0.0)
        if conn is not None and time.monotonic() - last > _STALE_AFTER_S:
            self._drop(conn)
            conn = None
        if conn is None:
            cls = HTTPSConnection if self._https else HTTPConnection
            conn = cls(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def _drop(self, conn: HTTPConnection) -> None:
        """Closes this thread's connection, to open a new one next time."""
        conn.close()
        self._local.conn = None
        with self._lock:
            if conn in self._conns:
                self._conns.remove(conn)

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        retry: bool = True,
    ) -> tuple[int, bytes]:
        """(status, body) of one request. A request that may be repeated
        without effect (``retry``) is sent again, once, on a fresh
        connection when the first fails without an answer."""
        if self._closed:
            raise Error("the client is closed")
        h = {"Content-Type": content_type} if body is not None else {}
        if self._token is not None:
            h["Authorization"] = f"Bearer {self._token}"
        h.update(headers or {})
        for attempt in (0, 1):
            conn = self._connection()
            try:
                conn.request(method, self._base + path, body=body, headers=h)
                response: HTTPResponse = conn.getresponse()
                data = response.read()
                self._local.last = time.monotonic()
                if response.will_close:
                    self._drop(conn)
                return response.status, data
            except (HTTPException, OSError) as e:
                self._drop(conn)
                if attempt == 1 or not retry:
                    raise Error(f"{method} {self._url}{path}: {e}") from e
        raise AssertionError("unreachable")

    def _json(self, method: str, path: str, payload: Any = None, retry: bool = True) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        status, data = self._request(method, path, body, retry=retry)
        if status != 200:
            raise _error(status, data)
        return json.loads(data)

    # The methods of Database.

    def execute(self, sql: str, params: Sequence[Any] | None = None):
        """Runs statements (the last one's output is returned) with ``$1``,
        ``$2``, ... bound to ``params``: a ``pyarrow.Table`` or a summary,
        as :meth:`Database.execute`."""
        table, summary = self._run(sql, params)
        return table if table is not None else summary

    def query(self, sql: str, params: Sequence[Any] | None = None):
        """Runs a statement and returns its rows as a ``pyarrow.Table``, as
        :meth:`Database.query`."""
        table, _ = self._run(sql, params)
        if table is None:
            import pyarrow

            return pyarrow.table({})
        return table

    def _run(self, sql: str, params: Sequence[Any] | None):
        body = b'{"sql":' + json.dumps(sql).encode()
        if params is not None:
            # Encoded as the embedded database binds them (datetimes, numpy).
            body += b',"params":' + to_json(list(params))
        body += b"}"
        # A statement may change data: sent once.
        status, data = self._request("POST", "/v1/query", body, retry=False)
        if status != 200:
            raise _error(status, data)
        return read_answer(data)

    def ingest(self, events: Any, idempotency_key: str | None = None) -> int:
        """Ingests events in one request, atomically, as
        :meth:`Database.ingest` takes them; returns how many were written.
        With ``idempotency_key`` (the server must keep history), a repeat of
        the request writes nothing, and the request is retried once on a
        lost connection."""
        body = events_json(*_args.events_for(events))
        headers = {} if idempotency_key is None else {"Idempotency-Key": idempotency_key}
        status, data = self._request(
            "POST", "/v1/events", body, headers=headers, retry=idempotency_key is not None
        )
        if status != 200:
            raise _error(status, data)
        return json.loads(data)["accepted"]

    def profile(self, user: str, as_of: Any = None, fields: Iterable[str] | None = None, window: Any = None):
        """The profile of ``user`` as a dict, ``None`` when the user does
        not exist: ``GET /v1/users/{id}``."""
        query = {}
        if as_of is not None:
            query["as_of"] = str(_args.epoch_ms(as_of))
        if window is not None:
            query["window"] = f"{_args.span_ms(window)}ms"
        fields = _args.fields(fields)
        if fields is not None:
            query["fields"] = ",".join(fields)
        path = "/v1/users/" + urllib.parse.quote(user, safe="")
        if query:
            path += "?" + urllib.parse.urlencode(query)
        status, data = self._request("GET", path)
        if status == 404:
            return None
        if status != 200:
            raise _error(status, data)
        return json.loads(data)

    def profiles(self, users: Iterable[str], as_of: Any = None, fields: Iterable[str] | None = None, window: Any = None):
        """The profiles of ``users`` in order (``None`` for a missing user):
        ``POST /v1/profiles``, each 1,000 ids one request and one view of
        the database. Without ``as_of``, every request reads as of the time
        the first was sent."""
        if isinstance(users, str):
            raise TypeError("profiles takes a list of user ids; use profile() for one")
        users = list(users)
        at = _args.epoch_ms(as_of)
        if at is None:
            at = int(time.time() * 1000)
        payload: dict[str, Any] = {"as_of": at}
        if window is not None:
            payload["window"] = f"{_args.span_ms(window)}ms"
        fields = _args.fields(fields)
        if fields is not None:
            payload["fields"] = fields
        out: list = []
        for i in range(0, len(users), _BATCH_READ):
            payload["ids"] = users[i : i + _BATCH_READ]
            out.extend(self._json("POST", "/v1/profiles", payload)["profiles"])
        return out

    def rows_as_of(self, select: str, pairs: Any):
        """Point-in-time rows, as :meth:`Database.rows_as_of`: ``POST
        /v1/rows_as_of``, 100,000 pairs a request, each request one view of
        the database."""
        import pyarrow

        users, times = _args.pairs(pairs)
        tables = []
        for i in range(0, max(len(users), 1), _PAIRS):
            chunk = [[u, t] for u, t in zip(users[i : i + _PAIRS], times[i : i + _PAIRS])]
            body = json.dumps({"select": select, "pairs": chunk}).encode()
            status, data = self._request("POST", "/v1/rows_as_of", body)
            if status != 200:
                raise _error(status, data)
            table, _ = read_answer(data)
            tables.append(table)
        return pyarrow.concat_tables(tables)

    def delete_user(self, user: str) -> bool:
        """Deletes ``user`` and all their state; whether they existed."""
        # Not repeated: a delete whose answer was lost would answer 404.
        status, data = self._request(
            "DELETE", "/v1/users/" + urllib.parse.quote(user, safe=""), retry=False
        )
        if status == 404:
            return False
        if status != 200:
            raise _error(status, data)
        return True

    def import_file(
        self,
        path: Any,
        format: str | None = None,
        skip_bad: bool = False,
        rename: Mapping[str, str] | None = None,
        ts_unit: str | None = None,
    ) -> dict:
        """Imports event files into the server as :meth:`Database.import_file`
        does: every line read and checked here first (a line that is not an
        event raises :class:`EventError` and nothing is sent), then sent in
        batches of 10,000, each one request and one atomic write. Without
        ``skip_bad`` a batch the server refuses (an event its schema does
        not take) stops the import, naming the line and how many events the
        earlier batches wrote; with it, the server writes each batch's good
        events and the rejected lines are listed."""
        paths = _args.paths(path)
        batches = EventBatches(paths, format, skip_bad, _args.renames(rename), ts_unit)
        rejected = list(batches.rejected)
        written = duplicates = 0
        query = "?skip_bad=true" if skip_bad else ""
        for lines, body in batches:
            status, data = self._request("POST", "/v1/events" + query, body, retry=False)
            if status != 200:
                err = _error(status, data)
                index = getattr(err, "index", None)
                where = ""
                if index is not None and 0 <= index < len(lines):
                    err.file, err.line = lines[index]
                    where = f"{err.file}:{err.line}: "
                err.args = (
                    f"{where}{err.message} (the server answered {status}); "
                    f"{written} events were written before it, by earlier requests",
                )
                raise err
            answer = json.loads(data)
            written += answer.get("accepted", 0)
            duplicates += answer.get("duplicates", 0)
            for r in answer.get("rejected", []):
                file, line = lines[r["index"]]
                field = f"field '{r['field']}': " if r.get("field") else ""
                rejected.append((file, line, field + r.get("reason", "")))
        rejected.sort(key=lambda r: (r[0], r[1]))
        return {"written": written, "duplicates": duplicates, "rejected": rejected}

    def flush(self) -> None:
        """Nothing: the server makes writes durable by its own policy."""
        if self._closed:
            raise Error("the client is closed")


def connect(url: str, token: str | None = None, timeout: float = 60.0) -> Remote:
    """A client of the server at ``url`` (``http://HOST:PORT``), with the
    bearer ``token`` (default: the ``PROFILEDB_TOKEN`` environment
    variable), each request failing after ``timeout`` seconds."""
    if token is None:
        token = os.environ.get("PROFILEDB_TOKEN")
    return Remote(url, token, timeout)
