"""Turn probe snapshots into a View and a stream of events, away from the probe threads.

The monitor is the only place that decides a probe is STALLED: a driver call in flight for
longer than `stall_after`. It runs in its own thread (see fiswatch.engine.runner) and only reads
the snapshots the probes publish, so a probe blocked forever cannot slow it down.
"""
import collections
import queue
import time
from typing import Callable, Deque, Dict, List, Mapping, Optional, Sequence, Tuple

from fiswatch import events as E
from fiswatch.engine.readround import read_lag
from fiswatch.model import BackendInfo, EndpointView, Event, ProbeView, Snapshot, State, View

HISTORY = 60  # seconds of ops/s kept for the sparkline
LOG_EVENTS = 200  # recent events kept for the event pane


class Inbox:
    """The run's events on their way to the monitor: `emit` from any thread, `drain` from the monitor's.

    Made before the Runner when something built first must report into the run (the
    outputs' error handlers, the AWS sources).

    >>> box = Inbox()
    >>> from fiswatch import events as E
    >>> box.emit(E.info("hello"))
    >>> [e.get("message") for e in box.drain()], box.drain()
    (['hello'], [])
    """

    def __init__(self) -> None:
        self._queue: "queue.SimpleQueue[Event]" = queue.SimpleQueue()

    def emit(self, event: Event) -> None:
        self._queue.put(event)

    def drain(self) -> List[Event]:
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out


class Monitor:
    """Call `emit` from any thread; call `tick` from one thread only."""

    def __init__(self, probes: Sequence, infos: Mapping[str, BackendInfo], watchers: Sequence = (),
                 stall_after: float = 2.0,
                 topology: Optional[Callable[[str], Tuple[str, ...]]] = None,
                 status: Optional[Callable[[], Tuple[str, ...]]] = None,
                 keys: Sequence[Tuple[str, str]] = (), inbox: Optional[Inbox] = None,
                 programs: Sequence = (), down: Optional[Callable[[], str]] = None) -> None:
        self.probes = tuple(probes)
        self.down = down  # "" or what is down under every endpoint (lab/liveness.py: the lab's daemon)
        self.programs = tuple(programs)  # each has `.snapshot`: a tuple of ProgramView, swapped whole (--exec)
        self.infos = dict(infos)
        self.watchers = tuple(watchers)
        self.stall_after = stall_after
        self.topology = topology
        self.status = status
        self.paused = False
        self.keys: Tuple[Tuple[str, str], ...] = tuple(keys)  # extra key bindings the View shows
        self.inbox = inbox if inbox is not None else Inbox()
        eps = [e for e in (getattr(p, "endpoint", None) for p in self.probes) if e is not None]  # read endpoint -> its writer's (read lag)
        self.writers = {e.name: e.writer for e in eps if getattr(e, "reads", False) and e.writer}
        self._states: Dict[str, State] = {}
        self._longest: Dict[str, float] = {}
        self._history: Dict[str, Deque[int]] = {p.id: collections.deque(maxlen=HISTORY) for p in self.probes}
        self._last_counts: Dict[str, Tuple[int, int, float]] = {}
        self._second: Optional[int] = None
        self._log: Deque[Event] = collections.deque(maxlen=LOG_EVENTS)
        self.view = View(ts=time.time(), probes=())

    def emit(self, event: Event) -> None:
        """Thread-safe: probes, DNS watchers, the lab and AWS pollers report here."""
        self.inbox.emit(event)

    def derive(self, snap: Snapshot, now: float) -> Tuple[State, float]:
        """The state shown for a snapshot, and how long its call has been in flight.

        >>> from fiswatch.model import Op
        >>> m = Monitor([], {}, stall_after=2.0)
        >>> s = Snapshot('a/b', 'a', 'b', state=State.OK, op=Op.INSERT, op_started=10.0)
        >>> m.derive(s, 11.0)
        (<State.OK: 'OK'>, 1.0)
        >>> m.derive(s, 12.5)[0]
        <State.STALLED: 'STALLED'>
        """
        age = snap.in_flight_for(now)
        if snap.op is not None and age >= self.stall_after and snap.state not in (State.UNAVAILABLE, State.STOPPED):
            return State.STALLED, age
        return snap.state, age

    def tick(self, now: Optional[float] = None, wall: Optional[float] = None) -> Tuple[View, List[Event]]:
        """Read every snapshot once; return the new View and the events since the last tick."""
        now = time.monotonic() if now is None else now
        wall = time.time() if wall is None else wall
        events = self.inbox.drain()
        second = int(wall)
        new_second = self._second is not None and second != self._second
        tick_fields: Dict[str, Dict[str, object]] = {}
        views: List[ProbeView] = []
        for probe in self.probes:
            snap = probe.snapshot
            state, age = self.derive(snap, now)
            pid = snap.probe
            if state is State.STALLED:
                self._longest[pid] = max(self._longest.get(pid, 0.0), age)
            previous = self._states.get(pid)
            if previous is not state:
                self._states[pid] = state
                events.append(E.state(
                    pid, snap.endpoint, snap.backend, state.value, ts=wall,
                    previous=previous.value if previous else None, op=str(snap.op) if snap.op else None,
                    error=snap.last_error.short() if (snap.last_error and state is State.ERROR) else None,
                    address=snap.address))
            history = self._history.setdefault(pid, collections.deque(maxlen=HISTORY))
            if self._second is None or new_second:
                last = self._last_counts.get(pid)
                if last is not None:
                    ops = snap.iterations - last[0]
                    lat = (snap.latency_total - last[2]) / ops * 1000.0 if ops > 0 else None
                    history.append(ops)
                    tick_fields[pid] = {"state": state.value, "ops": ops, "errors": snap.errors - last[1],
                                        "latency_ms": round(lat, 2) if lat is not None else None,
                                        "stalled_for": round(age, 2) if state is State.STALLED else 0.0}
                self._last_counts[pid] = (snap.iterations, snap.errors, snap.latency_total)
            views.append(ProbeView(
                snapshot=snap, info=self.infos.get(pid) or BackendInfo(snap.backend, "?", "?"), state=state,
                stalled_for=age if snap.op is not None else 0.0, ops_per_s=float(history[-1]) if history else 0.0,
                history=tuple(history), longest_stall=self._longest.get(pid, 0.0)))
        if self.writers:
            views = read_lag(views, self.writers)
        if tick_fields:
            events.append(E.tick(tick_fields, ts=wall))
        self._second = second
        for event in events:
            if event.event not in E.QUIET:
                self._log.append(event)
        self.view = View(
            ts=wall, probes=tuple(views), endpoints=self._endpoint_views(), events=tuple(self._log),
            paused=self.paused, status=self.status() if self.status else (), keys=self.keys,
            programs=tuple(v for program in self.programs for v in program.snapshot))
        return self.view, events

    def _endpoint_views(self) -> Tuple[EndpointView, ...]:
        out = []
        down = self.down() if self.down else ""
        for w in self.watchers:
            name = w.endpoint.name
            topo = self.topology(name) if self.topology else ()
            answer = w.answer  # one frozen value: the resolution and the answer before it, never torn
            out.append(EndpointView(name=name, host=w.endpoint.host, resolution=answer.latest,
                                    previous_addresses=answer.previous, topology=tuple(topo or ()), down=down))
        return tuple(out)

    def summary(self, view: Optional[View] = None) -> Event:
        """The last line of --json: per probe ops, errors, longest stall, stalled now."""
        view = view or self.view
        probes = {}
        for pv in view.probes:
            snap = pv.snapshot
            probes[pv.probe] = {
                "ops": snap.iterations, "errors": snap.errors, "reconnects": snap.reconnects,
                "failovers": snap.failovers,
                "longest_stall_s": round(pv.longest_stall, 2), "stalled_now": pv.state is State.STALLED,
                "state": pv.state.value, "address": snap.address,
                "last_error": snap.last_error.short() if snap.last_error else None,
            }
        return E.summary(probes)


