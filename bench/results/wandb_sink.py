"""Weights & Biases sink (``logger=wandb``): streams train loss, lr and each evaluation's metrics (dev; test
too with ``train.test_every_epoch``); its summary holds the metrics at the selected epoch (``dev/...``,
``test/...``), the score, lr, budget and costs.

Runs are named ``<variant>-<task>-s<seed>`` and grouped by sweep. Without an API key the run is
offline (``wandb sync <run dir>/wandb/offline-run-*`` uploads it later). Online, ``wandb.init`` waits at
most ``init_timeout_s`` (15 s; ``WANDB_INIT_TIMEOUT``) for the server; past that, or when the server
cannot be reached, a one-line notice says so and the run is logged offline. Every call is guarded: a W&B
failure prints a warning and turns the sink off; it never loses the run, its folder or its runs-CSV row.
"""

from __future__ import annotations

import os
from typing import Any

from bench.config.budget import budget_label, budget_of
from bench.log import log
from bench.results.runs_csv import run_row


def default_mode() -> str:
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        import netrc

        if netrc.netrc().authenticators("api.wandb.ai"):
            return "online"
    except (OSError, netrc.NetrcParseError):
        pass
    return "offline"


INIT_TIMEOUT_S = 15.0  # W&B's own default (90 s, and more with retries) stalls each run without a network
OFFLINE_SYNC = "`wandb sync <run dir>/wandb/offline-run-*` uploads it"


def init_run(mode: str, init_timeout_s: float | None = None, **kwargs: Any):
    """``wandb.init(mode=mode, **kwargs)``, waiting at most ``init_timeout_s`` (None: ``INIT_TIMEOUT_S``)
    for the server. Online, a server that does not answer in time, or cannot be reached, gives one
    notice and an offline run instead."""
    import wandb

    timeout = INIT_TIMEOUT_S if init_timeout_s is None else float(init_timeout_s)
    settings = wandb.Settings(init_timeout=timeout)
    if mode != "online":
        return wandb.init(mode=mode, settings=settings, **kwargs)
    try:
        return wandb.init(mode=mode, settings=settings, **kwargs)
    except (wandb.errors.CommError, TimeoutError) as e:
        reason = " ".join(f"{type(e).__name__}: {e}".split())
        log.warning(
            f"W&B: no connection to the server within {timeout:g} s ({reason}), so the run is logged "
            f"offline; {OFFLINE_SYNC}"
        )
        return wandb.init(mode="offline", settings=settings, **kwargs)


SUMMARY_KEYS = (
    "status", "main_metric", "select_on", "selection_metric", "best_epoch", "trainable_params",
    "total_params", "pct_trainable", "peak_memory_mb", "model_mb", "train_time_s", "train_samples_per_s",
    "adapter_mb", "config_hash", "config_key",
)  # fmt: skip


class WandbSink:
    """A ``bench.results.sinks.Sink``: one W&B run per training run."""

    def __init__(
        self,
        project: str = "peft-bench",
        entity: str | None = None,
        mode: str | None = None,
        tags: list[str] | None = None,
        init_timeout_s: float | None = None,
    ):
        self.project, self.entity, self.tags = project, entity, list(tags or [])
        self.init_timeout_s = init_timeout_s
        self.mode = mode or default_mode()
        if mode is None and self.mode == "offline":  # never a login prompt, with or without a terminal
            log.warning(
                f"W&B: no API key (WANDB_API_KEY or ~/.netrc), so the run is logged offline; {OFFLINE_SYNC}"
            )
        self.run = None

    def _guard(self, what: str, fn, *args, **kwargs):
        if what != "init" and self.run is None:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - W&B must never break a run
            log.warning(f"W&B {what} failed, continuing without W&B: {type(e).__name__}: {e}")
            self.run = None
            return None

    def start(self, run: dict[str, Any]) -> None:
        def init():
            self.run = init_run(
                self.mode,
                self.init_timeout_s,
                project=self.project,
                entity=self.entity,
                name=run["run_name"],
                group=run.get("group"),
                tags=[*self.tags, run["variant"], run["task"], run["model"], f"seed{run['seed']}"],
                config=run["config"],
                dir=run["run_dir"],
                job_type="train",
                reinit="finish_previous",
            )

        self._guard("init", init)

    def log(self, values: dict[str, float], step: int) -> None:
        self._guard("log", lambda: self.run.log(values, step=step))

    def finish(self, metrics: dict[str, Any]) -> None:
        def summarise():
            # Write the last logged step's row now: written by finish(), it would overwrite the summary's
            # dev/... and test/... (the selected epoch's) with the last epoch's values.
            self.run.log({}, commit=True)
            s = self.run.summary
            for k, v in metrics.get("best", {}).items():  # dev/... and test/... at the selected epoch
                s[k] = v
            for k, v in metrics.get("final", {}).items():
                s[f"final/{k}"] = v
            for k in SUMMARY_KEYS:
                s[k] = metrics.get(k)
            row = run_row(metrics)
            s["score"], s["dev_score"], s["chance_score"] = (
                row["score"],
                row["dev_score"],
                row["chance_score"],
            )
            s["lr"] = metrics.get("hparams", {}).get("lr")
            s["budget"] = budget_label(budget_of(metrics.get("settings") or {}))
            for k, v in (metrics.get("variant_summary") or {}).items():
                s[f"variant/{k}"] = v
            self.run.finish(exit_code=0 if metrics.get("status") == "completed" else 1)

        self._guard("finish", summarise)
        self.run = None

    def recover(self, metrics: dict[str, Any]) -> None:
        """Nothing to restore: a W&B run is written while it trains, not when it ends (a no-op)."""
