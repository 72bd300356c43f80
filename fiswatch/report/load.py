"""Reading a record for `report` and `verify`: the events, a note about skipped lines, or one error line."""
import sys
from typing import Any, Dict, List, Optional, Tuple

from fiswatch.exits import EXIT_USAGE


def fail(command: str, message: str) -> int:
    """One line on stderr (sys.stderr: report and verify run in-process too); exit 2."""
    sys.stderr.write("fiswatch %s: %s\n" % (command, message))
    return EXIT_USAGE


def load(command: str, path: str) -> Tuple[Optional[List[Dict[str, Any]]], Optional[str], Optional[str]]:
    """(events, note about skipped lines, error line)."""
    from fiswatch.output.record import RecordError, read_record

    reader = read_record(path)
    try:
        events = list(reader)
    except RecordError as exc:
        return None, None, str(exc)
    if not events:
        if reader.stopped:
            return None, None, "%s is not a fiswatch record: %s" % (path, reader.stopped)
        if reader.skipped:
            return None, None, "%s is not a fiswatch record: no line is a JSON event" % path
        return None, None, "%s is empty: no events recorded" % path
    return events, reader.note(), None
