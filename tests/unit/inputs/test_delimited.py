"""Reading delimited text (bench.inputs.delimited): rows verbatim, one width per file, errors that name
the file, the row and its line."""

from __future__ import annotations

import csv

import pytest

from bench.inputs.delimited import FIELD_LIMIT, read_rows


def write(folder, text: str, name: str = "data.txt"):
    path = folder / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_header_and_rows_come_back_verbatim_blank_lines_and_a_bom_dropped(tmp_path):
    path = write(tmp_path, '\ufeffa,b\n"x, y",1.50\n\n" NA ",\n')
    assert read_rows(path, ",", csv.QUOTE_MINIMAL, header=True) == (
        ["a", "b"],
        [["x, y", "1.50"], [" NA ", ""]],
    )


def test_quote_none_keeps_stray_quotes_and_a_headerless_file_has_no_header(tmp_path):
    path = write(tmp_path, 'say "hi\t1\nbye"\t0\n')
    assert read_rows(path, "\t", csv.QUOTE_NONE, header=False) == ([], [['say "hi', "1"], ['bye"', "0"]])


@pytest.mark.parametrize(
    ("text", "header", "message"),
    [
        (
            "a\tb\n1\t2\n3\t4\t5\n",
            True,
            r"data row 2 \(line 3\): 3 tab-separated fields, expected 2 \(as the header\)",
        ),
        ("a\tb\n1\n", True, r"data row 1 \(line 2\): 1 tab-separated fields, expected 2 \(as the header\)"),
        (
            "1\t2\n\n3\t4\t5\n",
            False,
            r"data row 2 \(line 3\): 3 tab-separated fields, expected 2 \(as the first row\)",
        ),
    ],
)
def test_a_row_of_another_width_is_refused(tmp_path, text, header, message):
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=rf"^{path}, {message}; a stray separator or a missing field"):
        read_rows(path, "\t", csv.QUOTE_NONE, header=header)


def test_a_field_over_the_limit_names_its_row_line_and_the_limit(tmp_path):
    path = write(tmp_path, "a\tb\n1\t2\n3\t" + "x" * (FIELD_LIMIT + 1) + "\n")
    with pytest.raises(
        ValueError, match=rf"^{path}, data row 2 \(line 3\): a field longer than 131,072 characters"
    ):
        read_rows(path, "\t", csv.QUOTE_NONE, header=True)
    in_header = write(tmp_path, "x" * (FIELD_LIMIT + 1) + "\tb\n1\t2\n", "header.txt")
    with pytest.raises(ValueError, match=rf"^{in_header}, header \(line 1\): a field longer"):
        read_rows(in_header, "\t", csv.QUOTE_NONE, header=True)
