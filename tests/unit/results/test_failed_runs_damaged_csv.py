"""failed_runs on a damaged runs CSV: its malformed lines are skipped and named, the failed rows listed,
and a prune keeps a copy of the file before it rewrites it without them."""

from __future__ import annotations

from pathlib import Path

from helpers.notices import notices

from bench.results import failed_runs
from bench.results.runs_csv import read_rows

LONG = "x" * 200_000  # over Python csv's field limit (131,072)


def damage(path: Path) -> list[str]:
    """A completed run's row made longer than the parser's field limit, and a stray line with an unclosed
    quote after it; the damaged file's lines."""
    with path.open(newline="") as f:
        lines = f.readlines()
    lines[2] = lines[2].replace("\r\n", LONG + "\r\n")
    lines.insert(3, '"never closed\r\n')
    with path.open("w", newline="") as f:
        f.write("".join(lines))
    return lines


def test_failed_runs_lists_the_failed_rows_of_a_damaged_csv(results, capsys, caplog):
    damage(results / "runs.csv")
    assert failed_runs.main(["--results", str(results)]) == 0
    out = capsys.readouterr().out
    listed = [line.split()[1] for line in out.splitlines() if line.startswith("failed ")]
    assert listed == ["lora-sst2-s0", "lora-sst2-s3", "vera-rte-s0"]  # the failed rows of helpers.results
    err = notices(caplog)
    assert f"(line 3 of {results / 'runs.csv'}): a line of 200," in err
    assert f"(line 4 of {results / 'runs.csv'}): a quoted field is not closed" in err


def test_prune_keeps_a_copy_of_a_damaged_csv(results, caplog):
    lines = damage(results / "runs.csv")
    failed_runs.main(["--results", str(results), "--prune"])
    [aside] = results.glob("runs.csv.bak-*")
    assert aside.read_bytes() == "".join(lines).encode()
    assert f"kept {results / 'runs.csv'} as {aside}: its malformed lines are dropped" in notices(caplog)
    read = read_rows(results / "runs.csv")
    assert read.skipped == [] and {r["status"] for r in read.rows} == {"completed", "diverged"}
