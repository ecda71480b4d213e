"""Subcommands of ``siri-bench``: one module each, with ``add_parser(subparsers)``.

To add a command, add a module here and its name to :data:`COMMANDS` (order = help order).
"""

COMMANDS: tuple[str, ...] = (
    "run",
    "eval",
    "report",
    "plan",
    "plan_compute",
    "envs",
    "algos",
    "data",
    "play",
    "view",
)
