"""``siri-bench panels``: the canonical task panels shipped in the package (see :mod:`envs.panels`).

``siri-bench panels`` lists them; ``siri-bench panels show NAME`` prints the panel's task ids, one
per line, in evaluation order (``NAME`` is ``env/name`` or ``env/name@vN``).
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("panels", help="list the canonical task panels, or show one's task ids",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--all-versions", action="store_true", help="list every shipped version, not only the newest")
    panels_sub = p.add_subparsers(dest="panels_command", metavar="ACTION", parser_class=type(p))
    show = panels_sub.add_parser("show", help="print a panel's task ids, one per line")
    show.add_argument("name", help="panel name, e.g. alfworld/valid_unseen or alfworld/valid_unseen@v1")
    show.set_defaults(func=run_show)
    p.set_defaults(func=run_list)


def run_list(args: argparse.Namespace) -> int:
    from envs.panels import available_panels

    for panel in available_panels(all_versions=args.all_versions):
        print(f"{panel.ref}\t{len(panel.task_uids)} tasks\t{', '.join(panel.envs)} split {panel.split}\t{panel.source}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from envs.panels import get_panel

    print("\n".join(get_panel(args.name).task_uids))
    return 0
