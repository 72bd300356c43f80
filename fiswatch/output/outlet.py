"""One bounded queue and one writer thread in front of each output.

The monitor thread hands every output (the record, --json, --plain, stdout, CloudWatch)
its items with `put`, which never blocks: a slow, blocked or full consumer only fills its
own queue, and when that is full the item is dropped and counted. So no output can delay
stall detection, the record, --duration, a signal or the exit.

A write that raises stops the outlet: the error is kept in `error`, `on_error` is called
once (from the writer thread), and later items are dropped and counted.
"""
import threading
from collections import deque
from typing import Any, Callable, Deque, Optional

_CLOSE = object()


class Outlet:
    """`put(item)` from any thread; `write(item)` runs in the outlet's own daemon thread."""

    def __init__(self, name: str, write: Callable[[Any], None], maxsize: int = 1000,
                 on_error: Optional[Callable[[BaseException], None]] = None) -> None:
        self.name = name
        self.maxsize = maxsize
        self.dropped = 0
        self.error: Optional[BaseException] = None
        self._write = write
        self._on_error = on_error
        self._items: Deque[Any] = deque()
        self._cond = threading.Condition()
        self._queued = 0  # items accepted so far
        self._done = 0  # items written (or dropped after an error)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="output " + name, daemon=True)
        self._thread.start()

    def put(self, item: Any) -> bool:
        """Queue `item`; False (and counted in `dropped`) when the queue is full, closed or failed."""
        with self._cond:
            if self._closed or self.error is not None or len(self._items) >= self.maxsize:
                self.dropped += 1
                return False
            self._items.append(item)
            self._queued += 1
            self._cond.notify_all()
            return True

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued so far is written; False if the time ran out."""
        with self._cond:
            target = self._queued
            return self._cond.wait_for(lambda: self._done >= target, timeout)

    def close(self, timeout: float) -> bool:
        """Write what is queued (at most `timeout` seconds), then stop; True if all was written."""
        with self._cond:
            self._closed = True
            self._items.append(_CLOSE)
            self._cond.notify_all()
        self._thread.join(max(0.0, timeout))
        return not self._thread.is_alive() and self.error is None

    @property
    def stuck(self) -> bool:
        """Still writing (blocked) after close() gave up on it."""
        return self._closed and self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._items))
                item = self._items.popleft()
            if item is _CLOSE:
                return
            if self.error is None:
                try:
                    self._write(item)
                except BaseException as exc:  # noqa: BLE001 - an output failing never ends the run by itself
                    self.error = exc
                    if self._on_error is not None:
                        try:
                            self._on_error(exc)
                        except Exception:  # noqa: BLE001
                            pass
            else:
                self.dropped += 1
            with self._cond:
                self._done += 1
                self._cond.notify_all()
