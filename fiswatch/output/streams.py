"""stdout and stderr for a run that must end well whatever happened to its terminal or pipe.

Nothing in a run writes through `sys.stdout`'s buffer: the screen text, JSON lines and the
summary go through an `Outlet` (own thread, bounded queue) that writes fd 1 with os.write,
so a blocked stdout (a FIFO nobody reads, `| less` not scrolled) holds only that thread,
and the exit never waits on a flush. `say()` writes one line to stderr and never raises:
a terminal that is gone (EIO), a closed pipe (EPIPE) or a full disk leaves it silent.
"""
import errno
import os
import sys
from typing import Iterable, Optional

GONE = (errno.EPIPE, errno.EIO, errno.ENXIO, errno.EBADF)  # the reader or the terminal went away


def write_fd(fd: int, text: str) -> None:
    """All of `text` to `fd` (UTF-8; unencodable characters replaced); raises OSError."""
    data = memoryview(text.encode("utf-8", "replace"))
    while data:
        written = os.write(fd, data)
        data = data[written:]


class FdStream:
    """A write()/flush() stream on a raw fd, for sinks that take a stream (JsonLines)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, text: str) -> None:
        write_fd(self.fd, text)

    def flush(self) -> None:
        pass


def silence(fd: int) -> None:
    """Point `fd` at /dev/null: later writes (ours, Python's at exit) succeed and go nowhere."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:  # pragma: no cover
        return
    try:
        os.dup2(null, fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(null)


def say(message: str, prefix: str = "fiswatch: ") -> None:
    """One line on stderr; never raises (a gone terminal or pipe makes stderr /dev/null)."""
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    try:
        write_fd(2, prefix + message + "\n")
    except OSError as exc:
        if exc.errno in GONE:
            silence(2)


def describe_stdout_error(exc: BaseException) -> Optional[str]:
    """The line to show for a failed stdout write; None when the reader left (| head, closed terminal)."""
    code = getattr(exc, "errno", None)
    if code in GONE:
        return None
    reason = getattr(exc, "strerror", None) or str(exc)
    return "cannot write to stdout (%s): the screen output stopped there" % reason


def terminal_gone(fds: Iterable[int] = (1, 0)) -> bool:
    """True when the terminal behind these fds was hung up (its pty master closed): EIO."""
    import termios

    for fd in fds:
        try:
            termios.tcgetattr(fd)
        except termios.error as exc:
            if exc.args and exc.args[0] in (errno.EIO, errno.ENXIO):
                return True
        except (OSError, ValueError):
            continue
    return False
