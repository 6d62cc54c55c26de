"""Progress of a run's optimizer steps (``train.progress``): a tqdm bar on a terminal, else log lines."""

from __future__ import annotations

import math
import multiprocessing
import sys

from tqdm.auto import tqdm

from bench.log import log

PROGRESS = ("auto", "bar", "log", "off")


class Progress:
    """Progress of the optimizer steps: a tqdm bar on a terminal, else a log line every tenth of the run.

    ``auto`` draws the bar only in a main process writing to a terminal: parallel launchers' workers
    (joblib) share the terminal, and their bars would overwrite each other.
    """

    def __init__(self, total: int, mode: str, done: int = 0):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() and multiprocessing.parent_process() is None else "log"
        self.total, self.mode, self.done, self.postfix = total, mode, done, ""
        self.every = max(1, math.ceil(total / 10))
        self.bar = None
        if mode == "bar":
            self.bar = tqdm(total=total, initial=done, desc="train", unit="step", mininterval=1.0)

    def update(self, metrics: str | None = None) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        elif self.mode == "log" and (self.done % self.every == 0 or self.done == self.total):
            log.info("train: step %d/%d%s", self.done, self.total, self.postfix)

    def show(self, text: str) -> None:
        self.postfix = f", {text}"
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
