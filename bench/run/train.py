"""Entry point: ``python -m bench train [overrides]`` (one run) or ``-m`` (a sweep); ``peft-bench-train``.

Hydra composes ``conf/train.yaml`` with the chosen groups; ``--help`` lists them and ``--cfg job``
prints the composed config. In a sweep, a run that fails is recorded as failed and the sweep goes on;
the sweep then exits 1 with a one-line summary (bench.results.sweep_callback). An error prints one line
naming where its traceback is (``bench.run.runner.where``: the run folder's ``error.txt``, or for a run
that never started ``<results>/errors/``), or the traceback itself with ``HYDRA_FULL_ERROR=1``. Ctrl-C
ends a run in one line naming its folder and the command that resumes it (a sweep: its summary, then
that line), with exit status 130. Before Hydra starts, the command's config is checked: its
``hydra.callbacks`` and ``logger`` name only allowed targets (``bench.config.targets``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import sys
import tempfile

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from bench.config import targets
from bench.config.store import CONF_DIR, group_options, register_configs, unknown_key
from bench.inputs.metrics import TEST
from bench.log import log
from bench.run import runner

register_configs()
FULL_ERROR = "HYDRA_FULL_ERROR"
SHOW_TRACEBACKS = os.environ.get(FULL_ERROR) == "1"  # the user's setting (main sets it for Hydra)
UNKNOWN_OPTION = re.compile(r"Could not find '(.+)/([^'/]+)'")
UNKNOWN_KEY = re.compile(r"Could not override '[^']+'\.\s+To append to your config use \+([^=]+)=(.*)")
INTERRUPTED = 130  # the exit status of a command stopped by Ctrl-C (128 + SIGINT)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the run of this folder (a single run: a sweep's runs are named by its summary)."""

    def __init__(self, run_dir: str):
        super().__init__(run_dir)
        self.run_dir = run_dir


# An absolute path: the same conf/ whether run as `python -m bench train`, `python -m bench train` or
# the console script `peft-bench-train` (a relative one resolves differently for each).
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def train(cfg: DictConfig) -> float | None:
    """Run one configuration; returns its selection metric (the dev score at the selected epoch) for
    sweepers such as Optuna, which must never tune on the test splits.

    Returns None for a run that failed, diverged or ran out of memory (Optuna records the trial as FAIL;
    a NaN would crash hydra-optuna-sweeper 1.x with optuna 2.x). A skipped run returns its earlier score.
    """
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    try:
        outcome = runner.run(cfg, hc.runtime.output_dir, hc.sweep.dir if multirun else None)
    except KeyboardInterrupt as e:
        if multirun:
            raise
        raise RunInterrupted(hc.runtime.output_dir) from e
    except Exception as e:
        if not multirun:
            if SHOW_TRACEBACKS:
                raise
            sys.exit(one_line(e, runner.where(e)))
        where = runner.where(e) or "nothing written"
        log.error("run %s failed (%s; the sweep goes on): %s: %s", hc.job.num, where, type(e).__name__, e)
        return None
    if outcome.skipped:
        log.info("skipped: %s", outcome.skipped)
        return main_score(outcome.metrics)
    metrics = outcome.metrics
    best = metrics.get("best", {})
    reported = (metrics["selection_metric"], f"{TEST}/{metrics['main_metric']}")
    shown = ", ".join(f"{k}={best[k]:.4f}" for k in dict.fromkeys(reported) if k in best)
    log.info(
        "%s %s: %s (selected epoch %s), %s trainable params (%.3f%%), %.1fs, run folder %s",
        metrics["run_name"],
        metrics["status"],
        shown or "no evaluation",
        metrics.get("best_epoch"),
        f"{metrics['trainable_params']:,}",
        metrics["pct_trainable"],
        metrics["train_time_s"],
        metrics["run_dir"],
    )
    return main_score(metrics)


def main_score(metrics: dict) -> float | None:
    """The selection metric at the selected epoch of a completed run (dev, or test under the papers'
    convention); None for any other status."""
    if metrics.get("status") != "completed":
        return None
    return (metrics.get("best") or {}).get(metrics.get("selection_metric"))


def one_line(e: BaseException, where: str | None) -> str:
    """``error: <the message and its cause>`` on one line, then ``where`` the traceback is (if it was
    written anywhere). Hydra's "Could not find 'group/name'" becomes the group's options, schemas left
    out; its "Could not override 'key'" (a key its schema lacks) names the closest valid keys, never
    suggesting ``+key`` (which ``bench.config.store.check_keys`` refuses)."""
    text = str(e)
    missing = UNKNOWN_OPTION.search(text)
    unknown = UNKNOWN_KEY.search(text)
    schema = getattr(e.__cause__, "object_type", None)
    if missing:
        group, name = missing.groups()
        text = f"unknown {group} {name!r}; available: {', '.join(group_options(group))}"
    elif unknown and dataclasses.is_dataclass(schema):
        text = unknown_key(*unknown.groups(), schema)
    elif e.__cause__ is not None and str(e.__cause__) not in text:
        text += f": {e.__cause__}"
    shown = f"{where}; {FULL_ERROR}=1 prints it" if where else f"{FULL_ERROR}=1 prints the traceback"
    return f"error: {' '.join(text.split()) or type(e).__name__} ({shown})"


def quiet_rank_overrides() -> list[str]:
    """Under torchrun (one run, never a sweep), the overrides that keep a rank other than 0 out of the
    results folder: its Hydra run folder is the temporary folder (which exists, so nothing is made),
    with no ``.hydra`` copy and no log file. Rank 0 writes the run and its error.txt
    (bench.run.distributed); another rank writes nothing, so its errors name no file."""
    if "RANK" in os.environ and {"-m", "--multirun"} & set(sys.argv):
        sys.exit(
            "error: torchrun runs one run, not a sweep (-m): sweep with hydra/launcher=slurm_ddp, or "
            "submitit_local with hydra.launcher.tasks_per_node=N, or call torchrun once per run"
        )
    rank = int(os.environ.get("RANK", 0))
    if rank == 0:
        return []
    scratch = tempfile.gettempdir()  # it exists: Hydra makes no folder, and nothing writes there
    return [f"hydra.run.dir={scratch}", "hydra.output_subdir=null", "hydra/job_logging=disabled"]


def interrupted(e: KeyboardInterrupt, command: str) -> list[str]:
    """What Ctrl-C stopped and the command that resumes it: a run's line, or a sweep's summary and line."""
    from bench.results.sweep_callback import interrupted_summary

    if isinstance(e, RunInterrupted):
        return [f"interrupted: run {e.run_dir}; the same command resumes it: {command}"]
    return interrupted_summary(command) or [f"interrupted before a run started; run again: {command}"]


def main() -> None:
    """The command line: ``train``, whose errors print one line, those of composing the config (an
    unknown option, a value that cannot name a folder) too. Hydra is told to raise them (its own report
    is a trimmed traceback); with the user's ``HYDRA_FULL_ERROR=1`` the traceback is printed."""
    os.environ[FULL_ERROR] = "1"
    command = shlex.join(["peft-bench", "train", *sys.argv[1:]])
    sys.argv += quiet_rank_overrides()
    try:
        targets.check_command(sys.argv[1:], CONF_DIR)
        train()
    except KeyboardInterrupt as e:
        print("\n".join(interrupted(e, command)), file=sys.stderr)
        if SHOW_TRACEBACKS:
            raise
        sys.exit(INTERRUPTED)
    except Exception as e:
        if SHOW_TRACEBACKS:
            raise
        sys.exit(one_line(e, "no run started"))


if __name__ == "__main__":
    main()
