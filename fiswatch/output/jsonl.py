"""--json: one JSON object per line on stdout, every object with `ts` and `event`."""
import json
from typing import IO, Iterable, List

from fiswatch import events as E
from fiswatch.model import Event, View

# Acknowledged writes go to --record (and verify); on stdout they would drown everything else.
SKIP = E.NOT_STREAMED  # the record keeps them


def event_line(event: Event) -> str:
    return json.dumps(event.as_dict(), default=str, separators=(",", ":"))


class JsonLines:
    """A runner sink writing events as JSON lines, flushed after every batch."""

    def __init__(self, stream: IO[str], skip: Iterable[str] = SKIP) -> None:
        self.stream = stream
        self.skip = tuple(skip)

    def __call__(self, view: View, events: List[Event]) -> None:
        lines = [event_line(e) for e in events if e.event not in self.skip]
        if lines:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
