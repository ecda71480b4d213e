"""Subcommands of ``siri-bench``: one module each, with ``add_parser(subparsers)``.

To add a command, add a module here and its name to :data:`COMMANDS` (order = help order; a
command ``a-b`` lives in module ``a_b``).
"""

COMMANDS: tuple[str, ...] = (
    "run",
    "eval",
    "report",
    "plan",
    "plan-compute",
    "envs",
    "panels",
    "check",
    "algos",
    "data",
    "play",
    "view",
)
