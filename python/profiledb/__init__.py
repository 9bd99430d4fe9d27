"""ProfileDB: an embedded database engine for dynamic user profiles.

Behaviour events update each user's state the moment they arrive: decayed
counters and averages, time-bucketed windows, embedding vectors. This package
runs the same engine as the ``profiledb`` program, inside the Python process::

    import profiledb
    with profiledb.open("profiles.db") as db:
        db.execute("CREATE EVENT purchase (amount FLOAT)")
        db.execute("CREATE FEATURE spend ON purchase AS DECAYED_SUM(amount) HALF_LIFE '7d'")
        db.ingest([{"user": "u1", "type": "purchase", "ts": "2026-11-01T10:00:00Z", "amount": 35.0}])
        table = db.query("SELECT id, spend FROM users WHERE spend > $1", [10])
        print(table.to_pandas())

Query results are ``pyarrow.Table`` objects with the statement's column types
(vectors as fixed-size lists of float32); in a notebook they show as tables.
Errors are :class:`Error` subclasses. :func:`connect` reaches a running
server with the same methods.

Opening a database sets the C library's malloc (glibc) for a process that
holds one, as the ``profiledb`` program does at its start: each new heap of a
thread's arena is made writable whole rather than a page at a time (a 64 MiB
top pad), and blocks up to 32 MiB come from the heaps. Scans that build many
rows on the worker pool run a quarter or more faster; each arena may keep up
to 64 MiB of freed memory.
"""

from __future__ import annotations

import os as _os
from typing import Any, Iterable, Mapping, Sequence

from . import _args
from ._profiledb import (
    CancelledError,
    Error,
    EventError,
    Native as _Native,
    NotFoundError,
    StatementError,
    __version__,
    pin_threads as _pin_threads,
)
from ._display import register as _register_display, table_html
from ._remote import Remote, connect

__all__ = [
    "Database",
    "Remote",
    "open",
    "connect",
    "pin_threads",
    "Error",
    "StatementError",
    "EventError",
    "NotFoundError",
    "CancelledError",
    "table_html",
    "__version__",
]

# In a notebook, query results show as tables.
_register_display()


class Database:
    """An open ProfileDB database. Use :func:`open` to get one; it is also a
    context manager that closes the database on exit. Methods may be called
    from several threads at once; long ones release the GIL."""

    def __init__(
        self,
        path: str | _os.PathLike[str],
        block_cache_bytes: int | None = None,
        row_table_bytes: int | None = None,
    ):
        self._path = _os.fspath(path)
        self._native = _Native(self._path, block_cache_bytes, row_table_bytes)

    def __repr__(self) -> str:
        state = "closed" if self._native.is_closed() else "open"
        return f"<profiledb.Database {self._path!r} ({state})>"

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the database; later calls raise :class:`Error`."""
        self._native.close()

    def execute(self, sql: str, params: Sequence[Any] | None = None):
        """Runs one statement, with ``$1``, ``$2``, ... bound to ``params``.
        Returns a ``pyarrow.Table`` for a statement that returns rows, else
        its summary (``"CREATE FEATURE"``, ``"INSERT 2"``)."""
        table, summary = self._native.execute(sql, params)
        return table if table is not None else summary

    def query(self, sql: str, params: Sequence[Any] | None = None):
        """Runs one statement and returns its rows as a ``pyarrow.Table``
        (with no columns for a statement that returns none)."""
        table, _ = self._native.execute(sql, params)
        if table is None:
            import pyarrow

            return pyarrow.table({})
        return table

    def ingest(self, events: Any) -> int:
        """Ingests events atomically and returns how many were written: one
        dict, a list of dicts, a pandas DataFrame, or a pyarrow Table or
        RecordBatchReader (anything with ``__arrow_c_stream__``). Each event
        has ``user``, ``type`` and ``ts`` (epoch ms, RFC 3339 or a datetime)
        and its fields; vectors are lists of numbers. A rejected event raises
        :class:`EventError` with its ``index`` and ``field``, and nothing of
        the call is written."""
        data, arrow = _args.events_for(events)
        if arrow:
            return self._native.ingest_arrow(data)
        return self._native.ingest_dicts(data)

    def profile(
        self,
        user: str,
        as_of: Any = None,
        fields: Iterable[str] | None = None,
        window: Any = None,
    ) -> dict | None:
        """The profile of ``user`` as a dict (``None`` when the user does not
        exist), as of ``as_of`` (now by default), windows over ``window`` (a
        day by default), only the items ``fields`` names when given (and
        ``"segments"``). The same shape as ``GET /v1/users/{id}``."""
        return self.profiles([user], as_of=as_of, fields=fields, window=window)[0]

    def profiles(
        self,
        users: Iterable[str],
        as_of: Any = None,
        fields: Iterable[str] | None = None,
        window: Any = None,
    ) -> list[dict | None]:
        """The profiles of ``users`` in order, read from one view of the
        database, each as :meth:`profile` gives it."""
        if isinstance(users, str):
            raise TypeError("profiles takes a list of user ids; use profile() for one")
        return self._native.profiles(
            list(users), _args.epoch_ms(as_of), _args.span_ms(window), _args.fields(fields)
        )

    def rows_as_of(self, select: str, pairs: Any):
        """Point-in-time rows for training sets, without label leakage: the
        items of ``select`` (a select list, as after ``SELECT``: ``"spend,
        window_count(views, '1d')"``) for each (user, time) of ``pairs``, read
        as of that time. ``pairs`` is a list of ``(user, time)`` tuples, or a
        pandas DataFrame or pyarrow Table with ``user`` and ``ts`` columns;
        a time is epoch ms, an RFC 3339 string or a datetime. Returns a
        ``pyarrow.Table``: ``user``, ``ts`` (epoch ms) and the items, one row
        per pair in their order (items NULL for a user that did not exist
        then). With the event history on, each row is exactly what the writes
        up to its time give; a time before the history's horizon raises
        :class:`StatementError`. Each user's history is read once for all
        its pairs, from one moment of the database."""
        users, times = _args.pairs(pairs)
        return self._native.rows_as_of(select, users, times)

    def import_file(
        self,
        path: str | _os.PathLike[str] | Sequence[str | _os.PathLike[str]],
        format: str | None = None,
        skip_bad: bool = False,
        rename: Mapping[str, str] | None = None,
        ts_unit: str | None = None,
    ) -> dict:
        """Imports event files as ``profiledb import`` does: JSON Lines, CSV
        (``.csv``) or Parquet (``.parquet``), each also gzip-compressed
        (``.gz``), by extension unless ``format`` (``"jsonl"``, ``"csv"``,
        ``"parquet"``) says. ``path`` may be a list of files.

        Every file is checked first; a bad line raises :class:`EventError`
        (with ``file``, ``line`` and ``field`` of the first, and ``rejected``
        listing all as ``(file, line, reason)``) and nothing is written,
        unless ``skip_bad`` writes the good ones. ``rename`` maps column
        names to event names (``{"userId": "user"}``); numeric times are
        milliseconds unless ``ts_unit`` is ``"s"`` or ``"us"``. Returns
        ``{"written": n, "duplicates": n, "rejected": [(file, line, reason)]}``."""
        written, duplicates, rejected = self._native.import_files(
            _args.paths(path), format, skip_bad, _args.renames(rename), ts_unit
        )
        return {"written": written, "duplicates": duplicates, "rejected": rejected}

    def delete_user(self, user: str) -> bool:
        """Deletes ``user`` and all their state; whether they existed."""
        return self._native.delete_user(user)

    def flush(self) -> None:
        """Writes what is buffered to disk."""
        self._native.flush()


def open(  # noqa: A001 - the package's verb
    path: str | _os.PathLike[str],
    *,
    block_cache_bytes: int | None = None,
    row_table_bytes: int | None = None,
) -> Database:
    """Opens the database at ``path``, creating it when missing.

    ``block_cache_bytes`` sizes the cache of the store's blocks that point
    reads such as :meth:`Database.profile` read (1 GiB by default): reads
    of blocks outside it go to the operating system's page cache, or to disk
    on a host that does not keep one, so a process serving reads of many
    users gives it room for their data. ``row_table_bytes`` bounds the
    in-memory table that scans read (2 GiB by default; a database whose
    users take more is scanned from disk, and 0 always is). Both are the
    most the process takes for them, reached only as data is read and
    written."""
    return Database(path, block_cache_bytes, row_table_bytes)


def pin_threads() -> bool:
    """Gives the engine's worker pool (scans, batch reads, rankings) one
    thread per core, each pinned to its core, as the ``profiledb`` program
    does. Call it once, before opening a database, in a process that runs
    ProfileDB for most of its work; on virtual machines that place woken
    threads on one core it keeps a query's shares from running one after the
    other. Returns ``False`` where pinning would not help (one core, a CPU
    quota, a system other than Linux), and raises :class:`Error` once the
    pool is built (something has already run on it, or it was called
    before)."""
    return _pin_threads()
