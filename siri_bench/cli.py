"""The ``siri-bench`` command line.

Each subcommand lives in its own module under :mod:`siri_bench.commands` and exposes
``add_parser(subparsers)``; the module list is :data:`siri_bench.commands.COMMANDS`. User
errors (:class:`~siri_bench.errors.SiriBenchError`) are printed as one line and exit with
status 2; an interrupt exits with 130 after saying where the results so far are.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from siri_bench import __version__
from siri_bench.commands import COMMANDS
from siri_bench.errors import SiriBenchError
from siri_bench.logs import setup_logging


class _Parser(argparse.ArgumentParser):
    """argparse that exits with status 2 and a one-line message on a bad argument."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="siri-bench",
        description="Train and evaluate LLM agents with RL (GRPO, GiGPO, RLOO, SIRI, memory and skill "
                    "baselines) on ALFWorld and WebShop, over several seeds, with statistics and reports.",
        epilog="Run `siri-bench COMMAND --help` for the options of a command. "
               "Quickstart: siri-bench run configs/quickstart.yaml",
    )
    parser.add_argument("--version", action="version", version=f"siri-bench {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings and errors only")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module_name in COMMANDS:
        importlib.import_module(f"siri_bench.commands.{module_name.replace('-', '_')}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `run CONFIG --dry-run key=value`: argparse stops collecting the positional overrides at the
    # first option, so overrides written after an option arrive here; take them (only key=value words)
    if extra and hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    setup_logging(quiet=args.quiet, verbose=args.verbose)
    try:
        result = args.func(args)
    except SiriBenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: finished runs and evaluation rounds are saved; run the same command again "
              "to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `siri-bench algos | head -1`
        return 0
    logging.shutdown()
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
