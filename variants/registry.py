"""The open variant registry: a name -> ``Variant`` subclass map, never a closed enum.

Built-in variants are the modules of this package: each registers itself on import with ``@register``,
so a new file here (plus ``conf/variant/<name>.yaml``) is picked up with no central list to edit.
Outside packages register through the entry-point group ``peft_bench.variants``: each entry point names a
``Variant`` subclass (or a module that registers some on import). A plugin that fails to load is set
aside with a warning: only a run that asks for it fails, with the reason.
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from variants.base import Variant

ENTRY_POINT_GROUP = "peft_bench.variants"
NOT_VARIANTS = {
    "base",
    "registry",
    "nf4",
    "peft_twin",
    "input_adapter",
}  # modules of this package that define no variant
_REGISTRY: dict[str, type[Variant]] = {}
_ORIGIN: dict[str, str] = {}
_BROKEN: dict[str, str] = {}  # entry-point name -> why the plugin could not be loaded
_discovered = False


def register(cls: type[Variant], origin: str | None = None) -> type[Variant]:
    """Add a Variant subclass to the registry under ``cls.name`` (usable as a class decorator)."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{cls!r} needs a class attribute `name` that is an identifier, got {name!r}")
    origin = origin or f"{cls.__module__}.{cls.__qualname__}"
    existing = _REGISTRY.get(name)
    if existing is not None and existing is not cls:
        raise ValueError(
            f"variant name {name!r} from {origin} collides with the registered variant {_ORIGIN[name]}; "
            "rename one of them"
        )
    _REGISTRY[name] = cls
    _ORIGIN[name] = origin
    return cls


def discover() -> None:
    """Import every built-in variant module and every installed plugin (once per process)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name not in NOT_VARIANTS and not info.name.startswith("_"):
            importlib.import_module(f"variants.{info.name}")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = f"package {ep.dist.name} {ep.dist.version}, " if ep.dist is not None else ""
        origin = f"plugin ({dist}entry point {ep.name} = {ep.value})"
        try:
            load_plugin(ep, origin)
        except Exception as e:  # noqa: BLE001 - one broken plugin must not break every other variant
            _BROKEN[ep.name] = f"could not load the variant {origin}: {type(e).__name__}: {e}"
            warnings.warn(f"{_BROKEN[ep.name]} (the other variants work)", stacklevel=2)


def load_plugin(ep, origin: str) -> None:
    obj = ep.load()
    if isinstance(obj, type) and issubclass(obj, Variant):
        register(obj, origin=origin)
    elif not isinstance(obj, ModuleType):
        raise TypeError(f"the entry point names {obj!r}, not a Variant subclass or a module")


def available() -> list[str]:
    """The names of every registered variant, sorted."""
    discover()
    return sorted(_REGISTRY)


def broken() -> dict[str, str]:
    """Plugins that failed to load: entry-point name -> the reason."""
    discover()
    return dict(_BROKEN)


def get(name: str) -> type[Variant]:
    discover()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _BROKEN:
        raise ImportError(_BROKEN[name])
    raise KeyError(f"unknown variant {name!r}; available: {', '.join(available())}")


def build(name: str, options: dict[str, Any] | None = None) -> Variant:
    """Instantiate variant ``name`` from a plain dict of config options (unknown keys raise)."""
    cls = get(name)
    options = dict(options or {})
    options.setdefault("name", name)
    fields = set(cls.Config.__dataclass_fields__)
    unknown = sorted(set(options) - fields)
    if unknown:
        raise TypeError(f"variant {name!r} has no option(s) {unknown}; its options: {sorted(fields)}")
    return cls(cls.Config(**options))
