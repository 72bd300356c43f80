"""Follow a program's writes on the wire while it runs beside the demo (`fiswatch demo --exec`).

Once a second the lab's ledger is read (the daemon's `wire` control command); the processes of
the program (the `lab exec` process and its descendants) are merged per endpoint, and a change
of state goes to the event log as one line:

  writing             acknowledged writes in the last second (with ops/s and the instance)
  no acknowledged write for N s   (with what the wire saw: dropped connections, the last error code)
  writes refused 1290 on a demoted writer   (ERR 1290/1836 since the last acknowledged write)

When the demo stops, `wire_client` events carry the program's writes into the record, so the
end summary and `fiswatch report` give it a row beside the probes (report/build.py).
"""
import os
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple

from fiswatch import events as E
from fiswatch.model import Event

POLL = 1.0


def state_of(track: Dict[str, Any], now: float, previous_acked: int, interval: float) -> Tuple[str, str]:
    """(class, text) of one endpoint of the program. Pure.

    >>> state_of({"acked": 30, "segments": [[0.0, 9.9]], "last_refused": None}, 10.0, 20, 1.0)
    ('writing', 'writing, 10 ops/s')
    >>> state_of({"acked": 30, "segments": [[0.0, 5.0]], "last_refused": 9.0}, 10.0, 30, 1.0)[0]
    'refused'
    >>> state_of({"acked": 30, "segments": [[0.0, 5.0]], "last_error": [2013, 6.0], "dropped": 2}, 10.0, 30, 1.0)
    ('silent', 'no acknowledged write for 5 s (2 dropped connections, last error 2013)')
    """
    segments = track.get("segments") or []
    last_ack = segments[-1][1] if segments else None
    refused = track.get("last_refused")
    if refused is not None and (last_ack is None or refused > last_ack):
        return "refused", "writes refused 1290 on a demoted writer (%d refused)" % track.get("refused", 0)
    if last_ack is not None and now - last_ack <= max(1.0, interval):
        return "writing", "writing, %d ops/s" % round((track.get("acked", 0) - previous_acked) / max(interval, 1e-3))
    since = "no acknowledged write for %d s" % (now - last_ack) if last_ack is not None else "no acknowledged write yet"
    why = []
    if track.get("dropped"):
        why.append("%d dropped connections" % track["dropped"])
    if track.get("last_error"):
        why.append("last error %s" % track["last_error"][0])
    return "silent", since + (" (%s)" % ", ".join(why) if why else "")


class WireFollower:
    """A thread reading the ledger for the processes under `root_pid`; emits events through `emit`."""

    def __init__(self, lab_dir: str, root_pid: int, name: str, emit: Callable[[Event], None]) -> None:
        self.lab_dir, self.root_pid, self.name, self.emit = lab_dir, root_pid, name, emit
        self.stop_event = threading.Event()
        self.thread: Optional[threading.Thread] = None
        self.merged: Dict[str, Dict[str, Any]] = {}
        self.unmeasured: Dict[str, int] = {}

    def start(self) -> "WireFollower":
        self.thread = threading.Thread(target=self._run, name="wire follower", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop following; the program's `wire_client` events (one per endpoint) go to the record."""
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(10)
        self._poll()
        from fiswatch.lab.wire.accounting import GAP_MIN
        from fiswatch.lab.wire.verdict import PROGRAM

        for endpoint, m in sorted(self.merged.items()):
            self.emit(E.wire_client("%s/%s" % (endpoint, PROGRAM), endpoint, backend=self.name, acked=m["acked"],
                                    segments=m["segments"], gap_min=GAP_MIN, errors=m["errors"],
                                    last_error=m["last_error"], refused=m["refused"], last_refused=m["last_refused"],
                                    dropped=m["dropped"], last_dropped=m["last_dropped"], faults=m["faults"],
                                    unmeasured=dict(self.unmeasured)))

    def _poll(self) -> bool:
        from fiswatch.lab.control import ControlError, request
        from fiswatch.lab.layout import CONTROL_SOCKET
        from fiswatch.lab.wire.verdict import merge, program_clients

        try:
            snapshot = request(os.path.join(self.lab_dir, CONTROL_SOCKET), "wire", timeout=10)
        except (ControlError, OSError, ValueError):
            return False
        clients = program_clients(snapshot, self.root_pid)
        self.merged = merge(clients)
        unmeasured: Dict[str, int] = {}
        for c in clients:
            for why, n in (c.get("unmeasured") or {}).items():
                unmeasured[why] = unmeasured.get(why, 0) + n
        self.unmeasured = unmeasured
        return True

    def _run(self) -> None:
        shown: Dict[str, str] = {}
        acked: Dict[str, int] = {}
        said_unmeasured: Dict[str, int] = {}
        while not self.stop_event.wait(POLL):
            if not self._poll():
                continue
            now = time.time()
            for endpoint, track in sorted(self.merged.items()):
                cls, text = state_of(track, now, acked.get(endpoint, track.get("acked", 0)), POLL)
                acked[endpoint] = track.get("acked", 0)
                if shown.get(endpoint) != cls:
                    shown[endpoint] = cls
                    make = E.info if cls == "writing" else E.warning
                    self.emit(make("exec %s on %s: %s" % (self.name, endpoint, text)))
            for why, n in self.unmeasured.items():
                if said_unmeasured.get(why) != n and not said_unmeasured.get(why):
                    self.emit(E.warning("exec %s: a connection not measured: %s" % (self.name, why)))
                said_unmeasured[why] = n
