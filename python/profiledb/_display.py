"""Query results as tables in a notebook.

Results are plain ``pyarrow.Table`` objects, which Jupyter shows as text.
When the package is imported inside IPython, an HTML form for them is
registered with IPython's display formatter (only where pyarrow has none of
its own), so a result left at the end of a cell shows as a table: its first
rows, its column types, and how many rows there are.
"""

from __future__ import annotations

import html as _html
import sys
from typing import Any

# Rows a notebook shows of a result, first and last halves.
MAX_ROWS = 20
# Characters a cell shows before it is cut with an ellipsis.
MAX_CELL = 80


def _cell(v: Any) -> str:
    if v is None:
        return '<td style="color: gray">NULL</td>'
    if isinstance(v, float):
        text = repr(v)
    elif isinstance(v, list):
        text = "[" + ", ".join("NULL" if x is None else repr(x) if isinstance(x, float) else str(x) for x in v) + "]"
    else:
        text = str(v)
    if len(text) > MAX_CELL:
        text = text[: MAX_CELL - 1] + "…"
    align = ' style="text-align: right"' if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
    return f"<td{align}>{_html.escape(text)}</td>"


def table_html(table: Any, max_rows: int = MAX_ROWS) -> str:
    """A ``pyarrow.Table`` as an HTML table: a header of names and types,
    the first and last rows when there are more than ``max_rows``, and the
    row count."""
    n = table.num_rows
    names = table.column_names
    head = "".join(
        f"<th>{_html.escape(name)}<br><small>{_html.escape(str(field.type))}</small></th>"
        for name, field in zip(names, table.schema)
    )
    if n > max_rows:
        first = table.slice(0, max_rows // 2).to_pylist()
        last = table.slice(n - max_rows // 2).to_pylist()
        gap = [None]
    else:
        first, last, gap = table.to_pylist(), [], []
    rows = []
    for part in (first, gap, last):
        for row in part:
            if row is None:
                rows.append(f'<tr><td colspan="{len(names)}" style="text-align: center">…</td></tr>')
            else:
                rows.append("<tr>" + "".join(_cell(row[c]) for c in names) + "</tr>")
    count = f"{n} row" + ("" if n == 1 else "s")
    return (
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"<p><small>{count}</small></p>"
    )


def register() -> bool:
    """Registers :func:`table_html` for ``pyarrow.Table`` with the running
    IPython shell, if there is one; whether it did."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    if shell is None:
        return False
    import pyarrow

    if hasattr(pyarrow.Table, "_repr_html_"):
        return False
    shell.display_formatter.formatters["text/html"].for_type(pyarrow.Table, table_html)
    return True
