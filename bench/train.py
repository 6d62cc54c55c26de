"""Entry point: ``python -m bench.train [overrides]`` (one run) or ``-m`` (a sweep); ``peft-bench-train``.

Hydra composes ``conf/train.yaml`` with the chosen groups; ``--help`` lists them and ``--cfg job``
prints the composed config. In a sweep, a run that fails is recorded as failed and the sweep goes on.
"""

from __future__ import annotations

import logging

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from bench import runner
from bench.config import CONF_DIR, register_configs
from bench.metrics import TEST

log = logging.getLogger("peft-bench")
register_configs()


# An absolute path: the same conf/ whether run as `python -m bench.train`, `python -m bench train` or
# the console script `peft-bench-train` (a relative one resolves differently for each).
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Run one configuration; returns its selection metric (the dev score at the selected epoch) for
    sweepers such as Optuna, which must never tune on the test splits.

    Returns None for a run that failed, diverged or ran out of memory (Optuna records the trial as FAIL;
    a NaN would crash hydra-optuna-sweeper 1.x with optuna 2.x). A skipped run returns its earlier score.
    """
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    try:
        metrics = runner.run(cfg, hc.runtime.output_dir, hc.sweep.dir if multirun else None)
    except runner.RunSkipped as skipped:
        log.info("skipped: %s", skipped)
        return main_score(skipped.metrics)
    except Exception as e:
        if not multirun:
            raise
        log.error("run %s failed (recorded; the sweep goes on): %s: %s", hc.job.num, type(e).__name__, e)
        return None
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


if __name__ == "__main__":
    main()
