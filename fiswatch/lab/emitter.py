"""The emitter of a lab operation's steps (failover, crash, patch, switchover): a `lab` Event each, a lab.log line, an echo.

`Emit` is its type: emit(step, detail, **extra). lab/failover.py re-exports both.
"""
import os
import time
from typing import Any, Callable, Optional

from fiswatch.lab import layout as L

Emit = Callable[..., None]  # emit(step, detail, **extra)


def make_emitter(lab_dir: str, target: str, crash: bool, sink: Optional[Callable[[Any], None]],
                 echo: Optional[Callable[[str], None]] = None, what: str = "failover") -> Emit:
    """An emit(step, detail, **extra) that builds Events, logs to lab.log and optionally echoes."""
    from fiswatch import events as E

    layout_dir = lab_dir

    def emit(step: str, detail: str, **extra: Any) -> None:
        event = E.lab(target, step, detail, crash=crash, **extra)
        line = "%s %s: %-9s %s" % (what, target, step, detail)
        try:
            with open(os.path.join(layout_dir, L.LOG_FILE), "a") as fh:
                fh.write("%s %s\n" % (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.ts))
                                      + ".%03d" % (int(event.ts * 1000) % 1000), line))
        except OSError:
            pass
        if echo is not None:
            echo("%s.%03d %s" % (time.strftime("%H:%M:%S", time.localtime(event.ts)), int(event.ts * 1000) % 1000,
                                 line))
        if sink is not None:
            sink(event)

    return emit
