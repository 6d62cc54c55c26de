"""Fine-tuning methods: the contract (``variants.base``), the registry (``variants.registry``) and one
module per method. The registry's functions are re-exported here: ``variants.available()``,
``variants.get(name)``, ``variants.build(name, options)``.
"""

from variants.base import AdapterLayer, Targets, Variant, VariantConfig
from variants.input_adapter import InputAdapter
from variants.registry import available, broken, build, get, register

__all__ = [
    "AdapterLayer",
    "InputAdapter",
    "Targets",
    "Variant",
    "VariantConfig",
    "available",
    "broken",
    "build",
    "get",
    "register",
]
