"""Type stubs of the native module; use the `profiledb` package, not this."""

from os import PathLike
from typing import Any, Iterable, Optional, Sequence, Tuple

import pyarrow

__version__: str

class Error(Exception):
    """Every error ProfileDB raises."""

    message: str

class StatementError(Error):
    """A statement that does not parse, plan or run."""

    line: Optional[int]
    column: Optional[int]

class EventError(Error):
    """A rejected event; nothing of the call was written."""

    index: Optional[int]
    field: Optional[str]
    # Set by import_file: the first bad line, and every one.
    file: Optional[str]
    line: Optional[int]
    rejected: list[Tuple[str, int, str]]

class NotFoundError(Error):
    """A named schema item or user that does not exist."""

class CancelledError(Error):
    """A statement cancelled by its deadline."""

class Native:
    def __init__(
        self,
        path: str | PathLike[str],
        block_cache_bytes: Optional[int] = None,
        row_table_bytes: Optional[int] = None,
    ) -> None: ...
    def close(self) -> None: ...
    def is_closed(self) -> bool: ...
    def execute(
        self, sql: str, params: Optional[Sequence[Any]] = None
    ) -> Tuple[Optional[pyarrow.Table], Optional[str]]: ...
    def ingest_dicts(self, events: Iterable[dict]) -> int: ...
    def ingest_arrow(self, data: Any) -> int: ...
    def profiles(
        self,
        users: list[str],
        as_of: Optional[int] = None,
        window_ms: Optional[int] = None,
        fields: Optional[list[str]] = None,
    ) -> list[Optional[dict[str, Any]]]: ...
    def import_files(
        self,
        paths: list[str],
        format: Optional[str] = None,
        skip_bad: bool = False,
        rename: Optional[list[str]] = None,
        ts_unit: Optional[str] = None,
    ) -> Tuple[int, int, list[Tuple[str, int, str]]]: ...
    def rows_as_of(self, select: str, users: list[str], times: list[int]) -> pyarrow.Table: ...
    def delete_user(self, user: str) -> bool: ...
    def flush(self) -> None: ...

class EventBatches:
    """Event files read for a server: checked, then (lines, JSON array) batches."""

    rejected: list[Tuple[str, int, str]]
    def __init__(
        self,
        paths: list[str],
        format: Optional[str] = None,
        skip_bad: bool = False,
        rename: Optional[list[str]] = None,
        ts_unit: Optional[str] = None,
        batch: int = 10000,
    ) -> None: ...
    def __iter__(self) -> "EventBatches": ...
    def __next__(self) -> Tuple[list[Tuple[str, int]], bytes]: ...

def read_answer(body: bytes) -> Tuple[Optional[pyarrow.Table], Optional[str]]: ...
def events_json(events: Any, arrow: bool) -> bytes: ...
def to_json(value: Any) -> bytes: ...
def parse_timestamp(t: str) -> int: ...
def parse_duration(d: str) -> int: ...
def pin_threads() -> bool: ...
