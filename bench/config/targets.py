"""Which ``_target_`` a config may name: the project's own components, and those that installed plugins
declare through entry points. A config is data: it chooses among them and never names an arbitrary
callable, so ``+logger.x._target_=builtins.open`` is refused before anything is instantiated.

- sinks (``logger.*``, ``bench.results.sinks``): ``BUILT_IN[SINKS]`` and the entry-point group
  ``peft_bench.sinks``;
- Hydra callbacks (``hydra.callbacks.*``): ``BUILT_IN[CALLBACKS]`` and the group ``peft_bench.callbacks``.

An entry point ``name = "package.module:Class"`` allows the target ``package.module.Class``. Every
``_target_`` of a section is checked, at any depth (Hydra instantiates nested ones too).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

SINKS = "peft_bench.sinks"
CALLBACKS = "peft_bench.callbacks"
BUILT_IN = {
    SINKS: ("bench.results.wandb_sink.WandbSink",),
    CALLBACKS: ("bench.results.sweep_callback.LeaderboardCallback",),
}
TARGET = "_target_"


def allowed(group: str) -> list[str]:
    """The targets a config may name in ``group``: the built-in ones, then those of installed plugins."""
    declared = {f"{ep.module}.{ep.attr}" for ep in entry_points(group=group) if ep.attr}
    return sorted({*BUILT_IN[group], *declared})


def targets(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every ``_target_`` in a config node, at any depth: (its dotted key, its value)."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == TARGET:
                yield f"{where}.{key}", value
            else:
                yield from targets(value, f"{where}.{key}")
    elif isinstance(node, Sequence) and not isinstance(node, str):
        for i, value in enumerate(node):
            yield from targets(value, f"{where}[{i}]")


def check(node: Any, where: str, group: str) -> None:
    """Raise unless every ``_target_`` in ``node`` (the config section ``where``) is allowed in ``group``."""
    ok = allowed(group)
    for key, target in targets(node, where):
        if target not in ok:
            raise ValueError(
                f"{key}={target!r} is not allowed: a config chooses among the project's components and "
                f"those that plugins declare (entry-point group {group}); allowed: {', '.join(ok)}"
            )


def check_command(argv: Sequence[str], conf_dir: Path, config_name: str = "train") -> None:
    """Compose the config of the command line ``argv`` as Hydra will, and check its ``hydra.callbacks``
    before Hydra instantiates them (it does so before any code of ours runs), and its ``logger`` before a
    run starts (``make_sinks`` checks each run's again). ``--experimental-rerun`` is refused: it
    unpickles a file. A composition error is raised as Hydra would raise it."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_automatic_config_search_path, get_args_parser
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    args, _ = get_args_parser().parse_known_args(list(argv))
    if args.experimental_rerun is not None:
        raise ValueError("--experimental-rerun is not supported: it unpickles a file, and a config is data")
    if args.help or args.hydra_help or args.cfg or args.info is not None or args.shell_completion:
        return  # Hydra instantiates no callback for these
    search_path = create_automatic_config_search_path(None, None, args.config_path or str(conf_dir))
    if args.config_dir is not None:
        search_path.prepend("command-line", f"file://{os.path.abspath(args.config_dir)}")
    hydra = Hydra.create_main_hydra2(task_name="train", config_search_path=search_path)
    try:  # as Hydra composes a sweep's config (a run's differs only in refusing sweep overrides)
        cfg = hydra.compose_config(
            args.config_name or config_name,
            args.overrides,
            run_mode=RunMode.MULTIRUN,
            validate_sweep_overrides=False,
        )
    finally:
        GlobalHydra.instance().clear()
    check(cfg.hydra.get("callbacks") or {}, "hydra.callbacks", CALLBACKS)
    check(cfg.get("logger") or {}, "logger", SINKS)
