"""Where a run's results go besides its folder: the ``Sink`` protocol and the sinks of a config.

Every run has the runs CSV (``paths.runs_csv``); ``logger=...`` adds the extra sinks (``wandb``). The
runner calls each sink's ``start`` once training is set up, ``log`` while it trains, ``finish`` when
the run ends (whatever its status), and ``recover`` instead when resume skips a completed run. A logger's
``_target_`` must be one of the project's sinks or one a plugin declares (entry-point group
``peft_bench.sinks``, ``bench.config.targets``): it is checked before anything is instantiated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from hydra.utils import instantiate

from bench.config import targets
from bench.results.runs_csv import RunsCsv


@runtime_checkable
class Sink(Protocol):
    def start(self, run: dict[str, Any]) -> None:
        """The run begins: ``run`` holds run_name, variant, task, model, seed, lr (the lr trained
        with), config_key, group, run_dir, config."""

    def log(self, values: dict[str, float], step: int) -> None:
        """Values at an optimizer step (``train/loss``, ``train/lr``, ``dev/<metric>``, ``test/<metric>``,
        ``epoch``)."""

    def finish(self, metrics: dict[str, Any]) -> None:
        """The run ended: ``metrics`` is its metrics.json."""

    def recover(self, metrics: dict[str, Any]) -> None:
        """Resume skipped a completed run (``metrics``: its metrics.json): restore what a kill lost."""


def make_sinks(cfg: Mapping[str, Any]) -> list[Sink]:
    """The runs CSV (``paths.runs_csv``), then one sink per entry of ``logger``, from a run's config (a
    DictConfig or the resolved plain dict); a ``_target_`` that is not allowed, or an entry that is no
    Sink, is an error."""
    sinks: list[Sink] = [RunsCsv(cfg["paths"]["runs_csv"])]
    loggers = cfg.get("logger") or {}
    targets.check(loggers, "logger", targets.SINKS)
    for key, node in loggers.items():
        sink = instantiate(node)
        if not isinstance(sink, Sink):
            missing = [
                m for m in ("start", "log", "finish", "recover") if not callable(getattr(sink, m, None))
            ]
            raise TypeError(
                f"logger.{key} ({type(sink).__name__}) is not a Sink: it lacks {', '.join(missing)}"
            )
        sinks.append(sink)
    return sinks
