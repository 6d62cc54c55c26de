"""Progress of the optimizer steps (bench.run.progress): log lines off a terminal, nothing when off."""

from __future__ import annotations

import logging

from bench.run.progress import Progress


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("train: step")]


def test_log_mode_writes_a_line_every_tenth_and_at_the_end_with_the_latest_metric(caplog):
    caplog.set_level(logging.INFO, logger="peft-bench")
    progress = Progress(25, "log")
    for step in range(25):
        if step == 20:
            progress.show("dev/accuracy=0.7500")
        progress.update()
    progress.close()
    shown = ", dev/accuracy=0.7500"
    assert lines(caplog) == [
        *(f"train: step {n}/25" for n in (3, 6, 9, 12, 15, 18)),
        *(f"train: step {n}/25{shown}" for n in (21, 24, 25)),
    ]


def test_off_is_silent_and_a_resumed_run_counts_from_its_step(caplog):
    caplog.set_level(logging.INFO, logger="peft-bench")
    progress = Progress(10, "off", done=4)
    for _ in range(6):
        progress.update()
    assert progress.done == 10 and lines(caplog) == []
    resumed = Progress(10, "log", done=8)
    resumed.update()
    resumed.update()
    assert lines(caplog) == ["train: step 9/10", "train: step 10/10"]
