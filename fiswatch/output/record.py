"""The run record: every event of a run as JSON lines, one flushed line per event.

`RecordWriter` appends one JSON object per event (the shape of docs/events.md) and flushes
it with the write, so a killed process loses at most the line being written. The file is
created 0600 and never followed through a symbolic link. A defensive filter drops any key
named like a password or secret and any `Secret` value, wherever it is nested.

`read_record` reads a record back, skipping a truncated or garbled line (a killed writer
leaves one at the end) and counting what it skipped.
"""
import errno
import json
import math
import os
import re
import threading
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional

from fiswatch import events as E

_SECRET_KEY = re.compile(r"passw|pwd|secret|credential|token", re.IGNORECASE)


class RecordError(Exception):
    """A record file cannot be written or read; str() is one line for the user."""


class RecordExists(RecordError):
    """--record names a file that exists (and --overwrite was not given): a usage error."""


def exists_message(path: str) -> str:
    return ("will not record to %s: the file already exists; give a new file name, or add %s to replace it"
            % (path, OVERWRITE_FLAG))


def is_secret_key(key: str) -> bool:
    """True for key names that could hold a credential (password, secret, token...)."""
    return bool(_SECRET_KEY.search(str(key)))


def scrub(value: Any) -> Any:
    """A JSON-ready copy of `value` without secret-named keys or `Secret` objects.

    Tuples become lists, enums their value, NaN/inf null, unknown objects their str().
    """
    from fiswatch.model import Secret

    if isinstance(value, Secret):
        return None
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if is_secret_key(str(key)) or isinstance(item, Secret):
                continue
            out[str(key)] = scrub(item)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        return [scrub(item) for item in value if not isinstance(item, Secret)]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return str(value)  # str-based enums (State, Op) become plain strings
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return int(value)
    return str(value)


def event_line(event: Any) -> str:
    """One event (an `Event` or a dict shaped like one) as a JSON line without secrets."""
    data = event.as_dict() if hasattr(event, "as_dict") else dict(event)
    return json.dumps(scrub(data), separators=(",", ":"), allow_nan=False) + "\n"


class RecordWriter:
    """Appends events to a record file, one flushed JSON line each.

    Thread-safe; a write costs one small `os.write` on a local file, and no probe thread
    ever calls it (the record's own output thread does), so it cannot hold up a driver call.
    A write error (disk or quota full, `ulimit -f`) does not raise: it is kept in `error`,
    `failed_at` is the time of the first event that did not make it, `on_error(message)`
    is called once, and later events are only counted in `lost`, so the watch keeps
    running and says at once and at the end what the record is missing.

    An existing file is refused (RecordError) unless `overwrite` is true.
    """

    def __init__(self, path: str, overwrite: bool = False,
                 on_error: Optional[Callable[[str], None]] = None) -> None:
        self.path = path
        self.lines = 0
        self.lost = 0  # events not written after the error
        self.error = None  # type: Optional[str]
        self.first_ts = None  # type: Optional[float]
        self.failed_at = None  # type: Optional[float]
        self.on_error = on_error
        self._lock = threading.Lock()
        self._fd = _open_private(path, overwrite)  # type: Optional[int]

    def write(self, event: Any) -> None:
        try:
            data = event_line(event).encode("utf-8")
        except (TypeError, ValueError) as exc:  # pragma: no cover - scrub makes all JSON-able
            data = event_line({"ts": getattr(event, "ts", 0), "event": E.WARNING,
                               "message": "unrecordable event: %s" % exc}).encode("utf-8")
        ts = _ts(event)
        failed = None
        with self._lock:
            if self._fd is None:
                if self.error is not None:
                    self.lost += 1
                return
            try:
                view = memoryview(data)
                while view:  # os.write on a regular file writes it all; loop anyway
                    written = os.write(self._fd, view)
                    view = view[written:]
                self.lines += 1
                if self.first_ts is None:
                    self.first_ts = ts
            except OSError as exc:
                self.error = "%s (%s)" % (exc.strerror or exc, _errno_name(exc))
                self.failed_at = ts
                self.lost += 1
                self._close_fd()
                failed = self.error
        if failed is not None and self.on_error is not None:
            self.on_error(failed)

    def close(self) -> None:
        with self._lock:
            self._close_fd()

    def _close_fd(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.close(fd)
            except OSError:  # pragma: no cover
                pass

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _ts(event: Any) -> Optional[float]:
    ts = event.get("ts") if isinstance(event, Mapping) else getattr(event, "ts", None)
    return float(ts) if isinstance(ts, (int, float)) and not isinstance(ts, bool) else None


def _errno_name(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno or 0, "error %s" % exc.errno)


OVERWRITE_FLAG = "--overwrite"


def _open_private(path: str, overwrite: bool = False) -> int:
    """Open `path` for writing, mode 0600, refusing symlinks, non-files and (unless
    `overwrite`) any file that already exists."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    flags |= os.O_TRUNC if overwrite else os.O_EXCL
    if os.path.islink(path):
        raise RecordError("cannot record to %s: it is a symbolic link; give a plain file path" % path)
    if os.path.isdir(path):
        raise RecordError("cannot record to %s: it is a directory; give a file path" % path)
    if not overwrite and os.path.lexists(path):
        raise RecordExists(exists_message(path))
    try:
        fd = os.open(path, flags | os.O_NONBLOCK, 0o600)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            raise RecordExists(exists_message(path))
        raise RecordError(_open_error(path, exc))
    try:
        import stat

        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RecordError("cannot record to %s: not a regular file; give a plain file path" % path)
        os.set_blocking(fd, True)
        if info.st_mode & 0o077:
            os.fchmod(fd, 0o600)  # an existing file keeps its mode otherwise
    except RecordError:
        os.close(fd)
        raise
    except OSError as exc:
        os.close(fd)
        raise RecordError(_open_error(path, exc))
    return fd


def _open_error(path: str, exc: OSError) -> str:
    code = exc.errno
    if code == errno.ELOOP:
        return "cannot record to %s: it is a symbolic link; give a plain file path" % path
    if code == errno.ENOENT:
        return "cannot record to %s: directory %s does not exist; create it or pick another path" % (
            path, os.path.dirname(os.path.abspath(path)))
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "cannot record to %s: permission denied; pick a path you can write (e.g. in your home)" % path
    if code == errno.EEXIST:
        return exists_message(path)
    if code == errno.EISDIR:
        return "cannot record to %s: it is a directory; give a file path" % path
    return "cannot record to %s: %s" % (path, exc.strerror or exc)


MAX_LINE = 1 << 20  # bytes: far above any event fiswatch writes; a longer line is skipped, never held
_CHUNK = 1 << 16


class RecordReader:
    """Iterates over the events of a record file; counts lines it had to skip.

    After iteration `skipped` is the number of lines that were not JSON objects with an
    `event` text and a numeric `ts` (a truncated last line counts as one), `skipped_last`
    tells whether the last line was one of them, and `lines` how many events were read.
    Memory stays bounded whatever the file holds: a line longer than MAX_LINE is skipped
    as it streams by, and binary data (NUL bytes with no line end within MAX_LINE, such as
    /dev/zero) ends the reading with `stopped` saying where.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.lines = 0
        self.skipped = 0
        self.skipped_last = False
        self.skipped_at = []  # type: List[int]  # 1-based line numbers (the first few)
        self.too_long = 0
        self.bad_ts = 0
        self.stopped = None  # type: Optional[str]

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        try:
            handle = open(self.path, "rb", buffering=0)
        except OSError as exc:
            raise RecordError("cannot read record %s: %s" % (self.path, exc.strerror or exc))
        with handle:
            number = 0
            for raw in self._raw_lines(handle):
                number += 1
                if raw is not None and not raw.strip():
                    continue
                item = _parse(raw) if raw is not None else None
                if item is None:
                    if raw is None:
                        self.too_long += 1
                    elif _bad_ts(raw):
                        self.bad_ts += 1
                    self.skipped += 1
                    if len(self.skipped_at) < 5:
                        self.skipped_at.append(number)
                    self.skipped_last = True
                    continue
                self.skipped_last = False
                self.lines += 1
                yield item

    def _raw_lines(self, handle: Any) -> Iterator[Optional[bytes]]:
        """Lines as bytes; None for a line longer than MAX_LINE (skipped while it streams by)."""
        buf = b""
        skipping = False  # inside an over-long line
        offset = 0
        while True:
            try:
                chunk = handle.read(_CHUNK)
            except OSError as exc:
                raise RecordError("cannot read record %s: %s" % (self.path, exc.strerror or exc))
            if not chunk:
                break
            offset += len(chunk)
            buf += chunk
            start = 0
            while True:
                cut = buf.find(b"\n", start)
                if cut < 0:
                    break
                if skipping:
                    skipping = False
                    yield None
                else:
                    yield buf[start:cut]
                start = cut + 1
            buf = buf[start:]
            if len(buf) > MAX_LINE:
                if b"\0" in buf:
                    self.stopped = "binary data (NUL bytes, no line end) from about byte %d" % max(0, offset - len(buf))
                    if not skipping:
                        yield None
                    return
                skipping = True
                buf = b""
        if skipping:
            yield None
        elif buf:
            yield buf

    def note(self) -> Optional[str]:
        """One line about skipped lines, or None when every line was read."""
        if self.stopped:
            return "%s: stopped reading at %s; %d event(s) read before it" % (self.path, self.stopped, self.lines)
        if not self.skipped:
            return None
        if self.skipped == 1 and self.skipped_last and not (self.too_long or self.bad_ts):
            return "%s: skipped a truncated last line (the run was probably killed)" % self.path
        why = []
        if self.too_long:
            why.append("%d longer than %d MiB" % (self.too_long, MAX_LINE >> 20))
        if self.bad_ts:
            why.append("%d with a `ts` that is not a number" % self.bad_ts)
        return "%s: skipped %d unreadable line(s)%s (line %s)" % (
            self.path, self.skipped, ": " + ", ".join(why) if why else "",
            ", ".join(str(n) for n in self.skipped_at[:5]) + (", ..." if self.skipped > 5 else ""))


def _parse(raw: bytes) -> Optional[Dict[str, Any]]:
    try:
        item = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if type(item) is not dict or type(item.get("event")) is not str:
        return None
    ts = item.get("ts")
    if type(ts) is float:  # the common case
        return item if math.isfinite(ts) else None
    if type(ts) is not int:  # bool, text, null...
        return None
    return item


def _bad_ts(raw: bytes) -> bool:
    """A JSON event whose only fault is its `ts` (for the note)."""
    try:
        item = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(item, dict) and isinstance(item.get("event"), str)


def read_record(path: str) -> RecordReader:
    """The events of a record file, as an iterable of dicts (see `RecordReader`)."""
    return RecordReader(path)


def load_record(path: str) -> List[Dict[str, Any]]:
    """All events of a record; raises RecordError (one line) if there are none at all."""
    reader = read_record(path)
    events = list(reader)
    if not events:
        if reader.skipped:
            raise RecordError("%s is not a fiswatch record: no line is a JSON event" % path)
        raise RecordError("%s is empty: no events recorded" % path)
    return events
