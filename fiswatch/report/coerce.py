"""Field values of a record as the report needs them: a wrong type is None (or empty), never an exception.

A record is user input: `fiswatch report` must survive `"ts": "abc"`, `"probes": 5` or
`"addresses": {"a": 1}` with one note, never a traceback.
"""
import math
from typing import Any, Dict, Iterable, List, Optional, Tuple


def as_float(value: Any) -> Optional[float]:
    """A finite float, or None (bool, text that is not a number, nan/inf, lists...)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return out if math.isfinite(out) else None


def as_int(value: Any) -> Optional[int]:
    """An int, or None; a float must be whole (an id of 3.5 is not an id)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value == int(value) else None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def as_text(value: Any) -> str:
    """A short one-line text for a label (a dict or list is shown, not trusted)."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return " ".join(text.split())[:200]


def as_list(value: Any) -> List[Any]:
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_addresses(value: Any) -> Tuple[str, ...]:
    """A DNS answer: a list of address strings (anything else is an empty answer)."""
    return tuple(a for a in as_list(value) if isinstance(a, str) and a)


def timed(events: Iterable[Any]) -> Tuple[List[Dict[str, Any]], int]:
    """The dict events that have a usable `ts`, sorted by it (ts made a float); and how many were dropped."""
    out = []
    dropped = 0
    for ev in events:
        ts = as_float(ev.get("ts")) if isinstance(ev, dict) else None
        if ts is None or not isinstance(ev.get("event"), str):
            dropped += 1
            continue
        out.append(ev if type(ev["ts"]) is float else dict(ev, ts=ts))
    out.sort(key=lambda e: e["ts"])
    return out, dropped
