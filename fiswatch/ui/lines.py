"""One screen line as styled segments, what every part of the dashboard returns, and the UI state. Pure."""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from fiswatch.ui import text as T

STYLES = ("title", "header", "ok", "stalled", "error", "warn", "dim", "normal", "help")


@dataclass(frozen=True)
class UiState:
    """What the dashboard itself remembers between key presses."""

    paused: bool = False  # p pressed: the runner pauses the probes, or (without a 'pause'
    # action) the dashboard freezes its display on the last frame
    show_help: bool = False
    confirm: Optional[str] = None  # key of a binding awaiting y/n
    message: str = ""  # one line for the footer ("failover aurora? (y/n)", "cancelled")
    unicode: bool = True  # block characters for sparklines; False = ASCII only
    confirm_keys: Tuple[str, ...] = ()  # extra keys that ask y/n first (shown in the help)


@dataclass(frozen=True)
class Line:
    """One screen line as (text, style) segments."""

    segments: Tuple[Tuple[str, str], ...] = ()

    @classmethod
    def of(cls, text: str, style: str = "normal") -> "Line":
        return cls(((text, style),) if text else ())

    @property
    def text(self) -> str:
        return "".join(t for t, _ in self.segments)

    def __len__(self) -> int:
        return sum(len(t) for t, _ in self.segments)

    def clip(self, width: int) -> "Line":
        """At most `width` characters; segments past the edge are cut."""
        out: List[Tuple[str, str]] = []
        room = max(0, width)
        for text, style in self.segments:
            if room <= 0:
                break
            piece = text[:room]
            if piece:
                out.append((piece, style))
            room -= len(piece)
        return Line(tuple(out))

    def pad(self, width: int, style: Optional[str] = None) -> "Line":
        """Exactly `width` characters: clipped, then padded with spaces."""
        line = self.clip(width)
        missing = width - len(line)
        if missing <= 0:
            return line
        if style is None:
            style = "normal"
        return Line(line.segments + ((" " * missing, style),))

    def __add__(self, other: "Line") -> "Line":
        return Line(self.segments + other.segments)


BLANK = Line()


def text_line(candidates: Sequence[str], width: int, style: str) -> Line:
    return Line.of(T.fit(candidates, width), style)


def greedy(parts: Sequence[Tuple[str, str]], width: int) -> Line:
    """Add (text, style) parts in order while they fit whole; the first one is cut if needed."""
    out: List[Tuple[str, str]] = []
    used = 0
    for i, (text, style) in enumerate(parts):
        text = T.clean(text)
        if i == 0:
            text = T.truncate(text, width)
        elif used + len(text) > width:
            continue
        out.append((text, style))
        used += len(text)
    return Line(tuple(out))
