"""``python -m bench <command> [args]``: train, leaderboard, report, new_variant, speed."""

import importlib
import sys

COMMANDS = {
    "train": "bench.train",
    "leaderboard": "bench.leaderboard",
    "report": "bench.report",
    "new_variant": "bench.new_variant",
    "speed": "bench.speed",
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        given = sys.argv[1] if len(sys.argv) > 1 else ""
        sys.exit(f"unknown command {given!r}; usage: python -m bench {{{','.join(COMMANDS)}}} [args]")
    name = sys.argv.pop(1)
    sys.argv[0] = f"python -m bench {name}"
    importlib.import_module(COMMANDS[name]).main()


if __name__ == "__main__":
    main()
