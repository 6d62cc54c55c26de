"""``python -m bench <command> [args]``: train, leaderboard, report, failed_runs, new_variant, speed."""

import runpy
import sys

COMMANDS = {
    "train": "bench.train",
    "leaderboard": "bench.leaderboard",
    "report": "bench.report",
    "failed_runs": "bench.failed_runs",
    "new_variant": "bench.new_variant",
    "speed": "bench.speed",
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        given = sys.argv[1] if len(sys.argv) > 1 else ""
        sys.exit(f"unknown command {given!r}; usage: python -m bench {{{','.join(COMMANDS)}}} [args]")
    name = sys.argv.pop(1)
    # Exactly as `python -m bench.<command>` (Hydra finds conf/ relative to the module run as __main__).
    runpy.run_module(COMMANDS[name], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
