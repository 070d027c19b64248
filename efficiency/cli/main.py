"""``python -m efficiency`` / ``efficiency``: everything the dashboard shows, as JSON, CSV or a table.

One module per command group (``profile``, ``hardware``, ``teaching``, ``cluster``, ``frontier``), each with a
``register(sub)`` that adds its subparsers and returns its command functions; this module only builds the
parser and dispatches. Bad arguments exit with status 2 and one line on stderr.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from efficiency.cli import cluster, frontier, hardware, profile, teaching
from efficiency.cli.args import Command, Parser, UsageError
from efficiency.validation import printable

COMMAND_GROUPS = (profile, hardware, teaching, cluster, frontier)
COMMANDS: dict[str, Command] = {}  # command name -> function, filled by build_parser


def build_parser() -> Parser:
    parser = Parser(prog="python -m efficiency", description="Profile models by every cost indicator.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in COMMAND_GROUPS:
        COMMANDS.update(group.register(sub))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status (0 ok, 1 a model failed, 2 bad input, 130 interrupted,
    141 the reader closed the output)."""
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except (UsageError, ValueError) as exc:
        print(f"error: {printable(exc, 500)}", file=sys.stderr)  # it may echo what was typed: no control chars
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `efficiency models | head` closed stdout: stop quietly, as a Unix tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes it
        return 141
    except SystemExit as exc:  # argparse's --help exits; main returns the status instead
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
