"""``peft-bench <command> [args]``, the same as ``python -m bench <command> [args]``: every command."""

from __future__ import annotations

import runpy
import sys

# command -> (module, what it does); each module's own --help gives its options.
COMMANDS = {
    "train": ("bench.run.train", "train one configuration, or a sweep with -m (Hydra overrides)"),
    "leaderboard": ("bench.analysis.leaderboard", "the tuned comparison of a results folder, as a table"),
    "report": ("bench.analysis.report", "the HTML report: verdict, plots and tables"),
    "tune": ("bench.run.tune", "tune a grid in stages: every point on one seed, the best on more"),
    "failed_runs": ("bench.results.failed_runs", "list or prune failed runs"),
    "rebuild_runs": ("bench.results.rebuild_runs", "write the runs CSV again from the run folders"),
    "wandb_workspace": ("bench.tools.wandb_workspace", "build and save the W&B workspace in code"),
    "new_variant": ("bench.tools.new_variant", "scaffold a new variant that trains and passes its tests"),
    "speed": ("bench.benchmarks.speed", "step time of our variants against peft's"),
    "peer_compare": ("bench.benchmarks.peer_compare", "end to end: our runner against Trainer + peft"),
    "sweep_overhead": ("bench.benchmarks.sweep_overhead", "where a sweep's wall time goes"),
    "resume_speed": ("bench.benchmarks.resume_speed", "resume lookup: the results index against a scan"),
    "gpu_check": ("bench.benchmarks.gpu_check", "the CUDA paths run and agree with the CPU: one JSON file"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {what}" for name, (_, what) in COMMANDS.items())
    return f"usage: peft-bench <command> [args]   (or python -m bench <command>)\n\ncommands:\n{rows}\n"


def main() -> None:
    given = sys.argv[1] if len(sys.argv) > 1 else ""
    if given in ("-h", "--help"):
        print(usage(), end="")
        return
    if given not in COMMANDS:
        sys.exit(f"unknown command {given!r}; available: {', '.join(COMMANDS)}\n\n{usage()}")
    sys.argv.pop(1)
    runpy.run_module(COMMANDS[given][0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
