"""SIGTERM as Ctrl-C for the lab's foreground commands (failover, crash, reboot): finished or rolled back."""
import contextlib
import signal
from typing import Any, Iterator


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops a foreground failover as Ctrl-C does: finished or rolled back, never half done."""
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt()

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


__all__ = ["sigterm_interrupts"]
