"""Algorithms: one module per algorithm, registered by name with ``@register_algorithm``.

Importing this package imports the built-in algorithm modules listed in :data:`BUILTIN`, so
their decorators run. Third-party algorithms use the entry-point group ``siri_bench.algorithms``.
"""

import importlib

BUILTIN: tuple[str, ...] = ("react", "grpo", "rloo", "gigpo", "sft", "siri.algorithm", "reflexion", "memrl", "skillrl",
                           "d2skill")

for _module in BUILTIN:
    importlib.import_module(f"algorithms.{_module}")
