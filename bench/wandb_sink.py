"""Weights & Biases sink (``logger=wandb``): streams train loss, lr and eval metrics; summary, config, tags.

Runs are named ``<variant>-<task>-s<seed>`` and grouped by sweep. Without an API key the run is
offline (``wandb sync <run dir>/wandb/offline-run-*`` uploads it later). Every call is guarded: a W&B
failure prints a warning and turns the sink off; it never loses the run, its folder or its runs-CSV row.
"""

from __future__ import annotations

import os
import warnings
from typing import Any


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


class WandbSink:
    """A ``bench.sinks.Sink``: one W&B run per training run."""

    def __init__(
        self,
        project: str = "peft-bench",
        entity: str | None = None,
        mode: str | None = None,
        tags: list[str] | None = None,
    ):
        self.project, self.entity, self.tags = project, entity, list(tags or [])
        self.mode = mode or default_mode()
        self.run = None

    def _guard(self, what: str, fn, *args, **kwargs):
        if what != "init" and self.run is None:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - W&B must never break a run
            warnings.warn(f"W&B {what} failed, continuing without W&B: {type(e).__name__}: {e}", stacklevel=2)
            self.run = None
            return None

    def start(self, run: dict[str, Any]) -> None:
        def init():
            import wandb

            self.run = wandb.init(
                project=self.project,
                entity=self.entity,
                mode=self.mode,
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
            s = self.run.summary
            for k, v in metrics.get("best", {}).items():
                s[f"best/{k}"] = v
            for k, v in metrics.get("final", {}).items():
                s[f"final/{k}"] = v
            for k in (
                "status",
                "main_metric",
                "best_epoch",
                "trainable_params",
                "total_params",
                "pct_trainable",
                "peak_memory_mb",
                "model_mb",
                "train_time_s",
                "train_samples_per_s",
                "adapter_mb",
                "config_hash",
            ):
                s[k] = metrics.get(k)
            s["score"] = metrics.get("best", {}).get(metrics.get("main_metric"))
            for k, v in (metrics.get("variant_summary") or {}).items():
                s[f"variant/{k}"] = v
            self.run.finish(exit_code=0 if metrics.get("status") == "completed" else 1)

        self._guard("finish", summarise)
        self.run = None

    def recover(self, metrics: dict[str, Any]) -> None:
        """Nothing to restore: a W&B run is written while it trains, not when it ends (a no-op)."""
