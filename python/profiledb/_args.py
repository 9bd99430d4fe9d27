"""Arguments as both the embedded database and the server client take them."""

from __future__ import annotations

import datetime as _dt
import os
from typing import Any, Iterable, Mapping

from ._profiledb import parse_duration, parse_timestamp


def epoch_ms(t: Any) -> int | None:
    """A time as epoch milliseconds: an int (ms), an RFC 3339 string, or a
    datetime (a naive one is UTC)."""
    if t is None:
        return None
    if isinstance(t, bool):
        raise TypeError("as_of: expected epoch ms, an RFC 3339 string or a datetime, got a bool")
    if isinstance(t, int):
        return t
    if isinstance(t, str):
        try:
            return int(t)
        except ValueError:
            return parse_timestamp(t)
    if isinstance(t, _dt.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=_dt.timezone.utc)
        return int(t.timestamp() * 1000)
    raise TypeError(
        f"as_of: expected epoch ms, an RFC 3339 string or a datetime, got {type(t).__name__}"
    )


def span_ms(window: Any) -> int | None:
    """A duration in ms: ``'7d'``, ``'1h30m'`` or a timedelta."""
    if window is None:
        return None
    if isinstance(window, _dt.timedelta):
        return int(window.total_seconds() * 1000)
    if isinstance(window, str):
        return parse_duration(window)
    raise TypeError(
        f"window: expected a duration such as '7d' or a timedelta, got {type(window).__name__}"
    )


def fields(names: Iterable[str] | None) -> list[str] | None:
    if names is None:
        return None
    if isinstance(names, str):
        return [names]
    return list(names)


def paths(path: Any) -> list[str]:
    """One path or several, as strings."""
    if isinstance(path, (str, bytes)) or hasattr(path, "__fspath__"):
        return [os.fsdecode(os.fspath(path))]
    return [os.fsdecode(os.fspath(p)) for p in path]


def renames(rename: Mapping[str, str] | None) -> list[str] | None:
    """``{"userId": "user"}`` as ``["userId=user"]``."""
    if rename is None:
        return None
    return [f"{k}={v}" for k, v in dict(rename).items()]


def is_pandas(obj: Any) -> bool:
    module = type(obj).__module__
    return module.startswith("pandas") and type(obj).__name__ == "DataFrame"


def events_for(events: Any) -> tuple[Any, bool]:
    """Events as the native module takes them: (a list of dicts, False) or
    (an Arrow stream, True)."""
    if isinstance(events, Mapping):
        return [events], False
    if isinstance(events, (list, tuple)):
        return events, False
    if is_pandas(events):
        import pyarrow

        events = pyarrow.Table.from_pandas(events, preserve_index=False)
    if hasattr(events, "__arrow_c_stream__"):
        return events, True
    raise TypeError(
        "ingest takes a dict, a list of dicts, a pandas DataFrame or a pyarrow Table, "
        f"not {type(events).__name__}"
    )


def pairs(data: Any) -> tuple[list[str], list[int]]:
    """(user, time) pairs as two lists, users and epoch ms: from a list of
    tuples, or a pandas DataFrame or pyarrow Table with ``user`` and ``ts``
    columns."""
    if is_pandas(data):
        import pyarrow

        data = pyarrow.Table.from_pandas(data, preserve_index=False)
    if hasattr(data, "column_names") and hasattr(data, "column"):
        missing = [c for c in ("user", "ts") if c not in data.column_names]
        if missing:
            raise ValueError(
                f"the pairs have no {' or '.join(repr(c) for c in missing)} column; "
                f"they have {data.column_names}"
            )
        import pyarrow
        import pyarrow.compute as pc

        ts = data.column("ts")
        if pyarrow.types.is_timestamp(ts.type):
            ts = pc.cast(pc.cast(ts, pyarrow.timestamp("ms", ts.type.tz)), pyarrow.int64())
        users = data.column("user").to_pylist()
        times = ts.to_pylist()
    else:
        users, times = [], []
        for i, pair in enumerate(data):
            try:
                user, t = pair
            except (TypeError, ValueError):
                raise TypeError(f"pair {i}: expected (user, time), got {pair!r}") from None
            users.append(user)
            times.append(t)
    out = []
    for i, (user, t) in enumerate(zip(users, times)):
        if not isinstance(user, str):
            raise TypeError(f"pair {i}: the user is not a string: {user!r}")
        try:
            ms = epoch_ms(t)
        except (TypeError, ValueError) as e:
            raise type(e)(f"pair {i}: {e}") from None
        if ms is None:
            raise TypeError(f"pair {i}: no time")
        out.append(ms)
    return users, out
