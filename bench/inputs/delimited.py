"""Delimited text files (GLUE's TSV, CSV), read row by row with every row's width checked.

``read_rows`` returns a file's header and data rows as strings, kept verbatim. A row with more or fewer
fields than the file's others (the header's, or the first row's when there is none) is refused, naming
the file, the data row, its line and both counts: a stray tab or comma would otherwise shift the columns
and pair a text with another row's label. So is a field longer than the csv module's limit (a
runaway quote or a line of megabytes), named with its file, row and the limit.
"""

from __future__ import annotations

import csv
from pathlib import Path

FIELD_LIMIT = csv.field_size_limit()  # the csv module's default: 131,072 characters
SEPARATORS = {"\t": "tab-separated", ",": "comma-separated"}


def read_rows(path: Path, delimiter: str, quoting: int, header: bool) -> tuple[list[str], list[list[str]]]:
    """(header, data rows) of ``path`` (the header is [] when ``header`` is False); blank lines skipped.

    GLUE's TSV files hold stray quotes, so they are read with ``csv.QUOTE_NONE``; CSV files with the
    csv module's default quoting (``csv.QUOTE_MINIMAL``, as pandas reads them). A byte-order mark is
    dropped (MRPC's header starts with one).
    """
    rows, lines = [], []  # each row, and the line it ends on
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter, quoting=quoting)
        try:
            for row in reader:
                if row:
                    rows.append(row)
                    lines.append(reader.line_num)
        except csv.Error as e:
            raise ValueError(f"{_where(path, len(rows) + 1, reader.line_num, header)}: {_why(e)}") from None
    names = rows[0] if header and rows else []
    start = 1 if header else 0
    width = len(names) if header else len(rows[0]) if rows else 0
    kind = SEPARATORS.get(delimiter, f"{delimiter!r}-separated")
    for n in range(start, len(rows)):
        if len(rows[n]) != width:
            raise ValueError(
                f"{_where(path, n + 1, lines[n], header)}: {len(rows[n])} {kind} fields, expected {width} "
                f"(as {'the header' if header else 'the first row'}); a stray separator or a missing field "
                "would shift the columns"
            )
    return names, rows[start:]


def _where(path: Path, row: int, line: int, header: bool) -> str:
    """``path, data row N (line L)``, or ``path, header (line L)``: ``row`` counts the header, if any."""
    data_row = row - 1 if header else row
    return f"{path}, " + (f"data row {data_row}" if data_row else "header") + f" (line {line})"


def _why(e: csv.Error) -> str:
    if "field limit" in str(e):
        return (
            f"a field longer than {FIELD_LIMIT:,} characters, the csv module's limit: no sentence is that "
            "long (an unclosed quote, or a line that is not data?)"
        )
    return str(e)
