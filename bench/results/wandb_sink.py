"""Weights & Biases sink (``logger=wandb``): one W&B run per training run, laid out as a W&B user lays
out a sweep.

- Name: ``<variant>-<task>-lr<lr>-s<seed>`` (``lora-rt_polarity-lr8e-3-s0``: the lr trained with, in
  ``short_lr``'s form); the group is the sweep (its folder's name). Run folders and the runs CSV keep
  their own names.
- Config: the resolved config plus ``config_key`` (one per configuration: group by it to average a
  configuration's seeds), ``lr`` (the lr trained with; ``variant.lr`` is the paper's), ``budget`` (its
  label) and ``experiment`` (``experiment_name``).
- History: ``train/...`` on the ``step`` axis (the optimizer step), ``dev/...`` and ``test/...`` on the
  ``epoch`` axis (``define_metric``); the last dev and test values do not reach the summary.
- Summary: the metrics at the selected epoch (``dev/...``, ``test/...``: the test splits are evaluated
  once, on the state dev selected), the score, lr, budget, costs and ``variant/...`` (a variant's facts,
  nested dicts flattened, lists left in metrics.json).
- Artifacts: ``predictions-<config hash>`` (test_predictions.csv.gz) and, when saved,
  ``adapter-<config hash>`` (the adapter folder, type ``model``).

Without an API key the run is offline (``wandb sync <run dir>/wandb/offline-run-*`` uploads it later).
Online, ``wandb.init`` waits at most ``init_timeout_s`` (15 s; ``WANDB_INIT_TIMEOUT``) for the server;
past that, or when the server cannot be reached, a one-line notice says so and the run is logged
offline. Every call is guarded: a W&B failure prints a warning and turns the sink off; it never loses
the run, its folder or its runs-CSV row.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.config.budget import budget_label, budget_of
from bench.config.hashing import config_settings
from bench.log import log
from bench.results.run_folder import RunFolder
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
STEP, EPOCH = "step", "epoch"  # the x axes: the optimizer step (logged with every row), the epoch
AXES = {"train/*": STEP, "dev/*": EPOCH, "test/*": EPOCH}  # the history's metrics -> their x axis


def short_lr(lr: float) -> str:
    """An lr for a name, short and exact to 6 significant digits: 0.008 -> "8e-3", 2.5e-05 -> "2.5e-5"."""
    mantissa, exponent = f"{lr:.5e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def wandb_name(run: dict[str, Any]) -> str:
    """A run's W&B name, ``<variant>-<task>-lr<short_lr>-s<seed>`` (no lr part when it has none)."""
    lr = f"-lr{short_lr(run['lr'])}" if run.get("lr") is not None else ""
    return f"{run['variant']}-{run['task']}{lr}-s{run['seed']}"


def wandb_config(run: dict[str, Any]) -> dict[str, Any]:
    """A run's W&B config: its resolved config plus ``config_key``, ``lr`` (the lr trained with),
    ``budget`` (its label) and ``experiment``."""
    config = run["config"]
    return {
        **config,
        "config_key": run.get("config_key"),
        "lr": run.get("lr"),
        "budget": budget_label(budget_of(config_settings(config))),
        "experiment": config.get("experiment_name"),
    }


def readable(prefix: str, value: Any) -> dict[str, Any]:
    """``value`` as summary entries: a dict flattened to ``prefix/key`` entries, a list left out (AdaLoRA's
    rank pattern stays in metrics.json), anything else as ``prefix``."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in readable(f"{prefix}/{key}", item).items()}
    return {} if isinstance(value, (list, tuple)) else {prefix: value}


def logged_run_id(run_dir: str | Path) -> str | None:
    """The id of the latest W&B run logged from ``run_dir`` (its ``wandb/`` folder); None when none was."""
    folders = [p for p in (Path(run_dir) / "wandb").glob("*run-*-*") if p.is_dir()]
    latest = max(folders, key=lambda p: p.name.removeprefix("offline-"), default=None)
    return latest.name.rsplit("-", 1)[1] if latest else None


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
        self.folder: RunFolder | None = None

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
                name=wandb_name(run),
                group=run.get("group"),
                tags=[*self.tags, run["variant"], run["task"], run["model"], f"seed{run['seed']}"],
                config=wandb_config(run),
                dir=run["run_dir"],
                job_type="train",
                reinit="finish_previous",
            )
            self.run.define_metric(STEP, hidden=True)
            for metrics, axis in AXES.items():  # dev, test: the summary is the selected epoch's (finish)
                self.run.define_metric(
                    metrics, step_metric=axis, **({"summary": "none"} if axis == EPOCH else {})
                )

        self.folder = RunFolder(Path(run["run_dir"]))
        self._guard("init", init)

    def log(self, values: dict[str, float], step: int) -> None:
        self._guard("log", lambda: self.run.log({**values, STEP: step}, step=step))

    def finish(self, metrics: dict[str, Any]) -> None:
        def summarise():
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
                s.update(readable(f"variant/{k}", v))
            self._log_artifacts(metrics)
            self.run.finish(exit_code=0 if metrics.get("status") == "completed" else 1)

        self._guard("finish", summarise)
        self.run = None

    def _log_artifacts(self, metrics: dict[str, Any]) -> None:
        """The run's test predictions and, when saved, its adapter, as artifacts named by its config hash."""
        import wandb

        meta = {k: metrics.get(k) for k in ("config_key", "config_hash", "variant", "task", "seed", "status")}
        name = metrics.get("config_hash") or self.run.id
        for path, kind, artifact_type in (
            (self.folder.test_predictions_path, "predictions", "predictions"),
            (self.folder.adapter_path, "adapter", "model"),
        ):
            if not path.exists():
                continue
            artifact = wandb.Artifact(f"{kind}-{name}", type=artifact_type, metadata=meta)
            if path.is_dir():
                artifact.add_dir(str(path), policy="immutable")
            else:
                artifact.add_file(str(path), policy="immutable")
            self.run.log_artifact(artifact)

    def recover(self, metrics: dict[str, Any]) -> None:
        """Nothing to restore: a W&B run is written while it trains, not when it ends (a no-op)."""
