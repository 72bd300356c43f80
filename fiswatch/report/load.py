"""Reading a record for `report` and `verify`: streamed once, with a note about skipped lines, or one error line."""
import argparse
import sys
from typing import Any, Callable, Optional, Tuple

from fiswatch.exits import EXIT_USAGE


def fail(command: str, message: str) -> int:
    """One line on stderr (sys.stderr: report and verify run in-process too); exit 2."""
    sys.stderr.write("fiswatch %s: %s\n" % (command, message))
    return EXIT_USAGE


def read(command: str, path: str, collect: Callable[[Any], Any], run: Optional[int] = None) -> Tuple[Any, Optional[str],
                                                                                                    Optional[str]]:
    """Stream the record at `path` once through `collect(events)` (a digest, the writes...): (what it
    returned, note about skipped lines, error line). The file is never held whole in memory.

    A record holding several runs is refused unless `run` picks one (see fiswatch.report.digest).
    """
    from fiswatch.output.record import RecordError, read_record
    from fiswatch.report.digest import run_message, runs_message

    reader = read_record(path)
    try:
        result = collect(reader)
    except RecordError as exc:
        return None, None, str(exc)
    if not reader.lines:
        if reader.stopped:
            return None, None, "%s is not a fiswatch record: %s" % (path, reader.stopped)
        if reader.skipped:
            return None, None, "%s is not a fiswatch record: no line is a JSON event" % path
        return None, None, "%s is empty: no events recorded" % path
    message = runs_message(path, result, command) or run_message(path, result)
    if message:
        return None, None, message
    return result, reader.note(), None


def add_run_argument(parser: argparse.ArgumentParser) -> None:
    """--run N, for a record that holds several runs (two records joined, a run appended)."""
    from fiswatch.config.checks import arg_type

    parser.add_argument("--run", type=arg_type(run_number, "run number"), metavar="N",
                        help="read only the N-th run of a record that holds several (1 is the first)")


def run_number(text: str) -> int:
    """A run's place in the record: 1, 2, ...

    >>> run_number("2")
    2
    """
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise ValueError("%r is not a run number: give 1 for the first run of the record, 2 for the second..." % text)
    return number
