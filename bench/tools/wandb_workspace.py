"""Build the W&B workspace of a project's peft-bench runs in code (``wandb-workspaces``), and save it.

    peft-bench wandb_workspace --entity me --experiment compare            # saves a view, prints its URL
    peft-bench wandb_workspace --entity me --experiment compare --dry-run  # prints its spec, saves nothing

The runs are grouped by ``config_key`` (a configuration's seeds averaged) and, with ``--experiment``,
filtered to that experiment's. Its sections: the tuned leaderboard (the table of the experiment's
sweep-end run), quality against cost (the test score against trainable parameters, peak memory and train
time), the lr (the dev score against the lr trained with, and a parallel-coordinates plot of variant,
task, lr and the scores) and the curves (dev metrics by epoch, train loss by step). Needs the optional
extra ``wandb-workspaces`` (``pip install 'peft-bench[wandb-workspaces]'``); saving needs a W&B login.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

LEADERBOARD = "leaderboard"  # the W&B Table of the sweep-end run (bench.results.wandb_leaderboard)
COSTS = ("trainable_params", "peak_memory_mb", "train_time_s")  # summary keys, each against the score


def _modules() -> tuple[Any, Any]:
    try:
        import wandb_workspaces.reports.v2 as wr
        import wandb_workspaces.workspaces as ws
    except ImportError as e:
        raise SystemExit(
            f"peft-bench wandb_workspace needs wandb-workspaces ({e}): "
            "pip install 'peft-bench[wandb-workspaces]'"
        ) from e
    return ws, wr


def build_workspace(entity: str, project: str, experiment: str | None = None) -> Any:
    """The workspace (a ``wandb_workspaces.workspaces.Workspace``, not saved) of the project's runs, or of
    one experiment's."""
    ws, wr = _modules()
    by_config = {"groupby": wr.Config("config_key"), "groupby_aggfunc": "mean", "groupby_rangefunc": "stderr"}
    sections = [
        ws.Section(
            name="Tuned leaderboard", is_open=True, panels=[wr.WeavePanelSummaryTable(table_name=LEADERBOARD)]
        ),
        ws.Section(
            name="Quality against cost",
            is_open=True,
            panels=[
                wr.ScatterPlot(
                    title=f"score against {c}", x=wr.SummaryMetric(c), y=wr.SummaryMetric("score"), log_x=True
                )
                for c in COSTS
            ],
        ),
        ws.Section(
            name="Learning rate",
            is_open=True,
            panels=[
                wr.ScatterPlot(
                    title="dev score against lr",
                    x=wr.Config("lr"),
                    y=wr.SummaryMetric("dev_score"),
                    log_x=True,
                ),
                wr.ParallelCoordinatesPlot(
                    title="configurations",
                    columns=[
                        wr.ParallelCoordinatesPlotColumn(metric=wr.Config("variant.name")),
                        wr.ParallelCoordinatesPlotColumn(metric=wr.Config("task.name")),
                        wr.ParallelCoordinatesPlotColumn(metric=wr.Config("lr"), log=True),
                        wr.ParallelCoordinatesPlotColumn(metric=wr.SummaryMetric("dev_score")),
                        wr.ParallelCoordinatesPlotColumn(metric=wr.SummaryMetric("score")),
                    ],
                ),
            ],
        ),
        ws.Section(
            name="Curves",
            panels=[
                wr.LinePlot(title="dev metrics by epoch", x="epoch", metric_regex="^dev/", **by_config),
                wr.LinePlot(title="train loss by step", x="step", y=["train/loss"], **by_config),
            ],
        ),
    ]
    return ws.Workspace(
        entity=entity,
        project=project,
        name=f"peft-bench: {experiment}" if experiment else "peft-bench",
        sections=sections,
        runset_settings=ws.RunsetSettings(
            filters=[ws.Config("experiment") == experiment] if experiment else "",
            groupby=[ws.Config("config_key")],
        ),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="peft-bench wandb_workspace", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--entity", default=os.environ.get("WANDB_ENTITY"), help="W&B entity (default: $WANDB_ENTITY)"
    )
    parser.add_argument(
        "--project",
        default=os.environ.get("WANDB_PROJECT", "peft-bench"),
        help="W&B project (default: $WANDB_PROJECT, else %(default)s)",
    )
    parser.add_argument("--experiment", help="only this experiment's runs (experiment_name)")
    parser.add_argument("--dry-run", action="store_true", help="print the workspace's spec; save nothing")
    args = parser.parse_args(argv)
    if not args.entity:
        parser.error("--entity is required (or set WANDB_ENTITY): the W&B user or team that owns the project")
    workspace = build_workspace(args.entity, args.project, args.experiment)
    if args.dry_run:
        print(json.dumps(workspace._spec, indent=2))  # the view W&B stores, as save() sends it
        return 0
    print(f"saved: {workspace.save().url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
