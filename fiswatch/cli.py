"""Command line: argparse, sub-commands, exit codes (0 ok, 1 failure, 2 bad usage).

This is the one place that registers every command: each command's module defines its
parser (and imports nothing heavy at import time), this file calls them in order, so
`fiswatch --help` imports no driver, no boto3 and no curses. Imports only go downward:
no command module imports this one (exit codes and UsageError live in fiswatch.exits).
"""
import argparse
import importlib
import os
import sys
from typing import Dict, List, Optional, Tuple

from fiswatch import __version__

from fiswatch.exits import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE, UsageError

DESCRIPTION = """\
Watch MySQL client libraries side by side while an Aurora cluster or an RDS Multi-AZ
database fails over. Each (endpoint, backend) pair writes in its own thread: INSERT,
COMMIT, SELECT the 10 newest rows; a call that hangs longer than --stall-after shows as
STALLED, so a driver without a read timeout is seen locking up next to one that recovers.
"""

EPILOG = """\
examples:
  fiswatch demo                                   the whole lesson on a local lab, no AWS needed
  fiswatch watch --workshop                       the workshop's two databases (Secrets Manager)
  FISWATCH_PASSWORD_AURORA=... fiswatch watch --endpoint aurora=mysql://admin@HOST/testdb
  fiswatch backends                               installed connector backends and their defaults

passwords never go on the command line: FISWATCH_PASSWORD_<NAME>, MYSQL_PWD or a prompt.
exit codes: 0 ok, 1 failure, 2 bad usage, %d a run whose record or output is incomplete (disk full...).
""" % EXIT_INCOMPLETE


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (plus where to get help)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, "%s: error: %s (try: %s --help)\n" % (self.prog, message, self.prog))


# Every command: module, parser registration, runners (for modules that set no handler).
PLUGGED: Tuple[Tuple[str, str, Dict[str, str]], ...] = (
    ("fiswatch.commands.watch", "add_watch_parser", {}),
    ("fiswatch.commands.demo", "add_parser", {}),
    ("fiswatch.commands.create_db", "add_create_db_parser", {}),
    ("fiswatch.commands.list_backends", "add_backends_parser", {}),
    ("fiswatch.lab.cli", "add_lab_parser", {"lab": "run_lab"}),
    ("fiswatch.report.cli", "add_report_parsers", {"report": "run_report", "verify": "run_verify"}),
    ("fiswatch.aws.cli", "add_experiment_parser", {"experiment": "run_experiment"}),
    ("fiswatch.aws.fleet_cli", "add_fleet_parser", {"fleet": "run_fleet"}),
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="fiswatch", description=DESCRIPTION, epilog=EPILOG,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version="fiswatch " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module, register, _ in PLUGGED:
        getattr(importlib.import_module(module), register)(sub)
    return parser


def run(argv: Optional[List[str]] = None) -> int:
    """Parse and run one command; return the exit code. Safe to call in-process."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    handler = getattr(args, "handler", None)
    for module, _, runners in PLUGGED:
        if handler is None and args.command in runners:
            handler = getattr(importlib.import_module(module), runners[args.command])
    assert handler is not None, args.command  # every command sets a handler or names its runner in PLUGGED
    try:
        return int(handler(args) or 0)
    except UsageError as exc:
        sys.stderr.write("fiswatch %s: error: %s\n" % (args.command, exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK


def main(argv: Optional[List[str]] = None) -> None:
    """Console-script entry point.

    Probes stuck forever inside a driver are daemon threads; to end within a second no
    matter what they hold, flush and leave with os._exit once the command is done.
    """
    import threading

    try:
        code = run(argv)
    except KeyboardInterrupt:
        code = EXIT_OK
    except BrokenPipeError:
        code = EXIT_OK
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass
    if threading.active_count() > 1:
        os._exit(code)
    sys.exit(code)
