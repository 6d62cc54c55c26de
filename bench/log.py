"""The project's one logger, ``log`` ("peft-bench"), for every notice.

Under Hydra (``train``) its records reach Hydra's handlers (the terminal and the run's log file); elsewhere
(the other commands, library use) they are printed to stderr as ``peft-bench: <message>``.
"""

import logging
import sys


class _StderrWhenUnconfigured(logging.StreamHandler):
    """Writes to the current ``sys.stderr`` while the root logger has no handler of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("peft-bench: %(message)s"))
        self.addFilter(lambda record: not logging.getLogger().handlers)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


log = logging.getLogger("peft-bench")
log.setLevel(logging.INFO)
log.addHandler(_StderrWhenUnconfigured())
