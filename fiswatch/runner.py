"""Wire probes, DNS watchers and the monitor together, and feed every output.

    endpoints x backends -> Probe threads --snapshots--> Monitor thread --View + events--> sinks
                                                                                         (screen, --plain, --json,
                                                                                          --record, CloudWatch)
The monitor thread ticks every 0.1 s, so a stall shows within stall_after + 0.1 s. Sinks
are called from the monitor thread and must not block for long; none of them ever
touches a driver.
"""
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from fiswatch.backends.registry import make_backend
from fiswatch.dnswatch import DnsWatcher
from fiswatch.model import BackendInfo, BackendSpec, Endpoint, Event, Snapshot, State, View
from fiswatch.monitor import Monitor
from fiswatch.probe import Probe, probe_id

TICK = 0.1
FREQUENT = ("write", "tick")  # events kept on disk (the record), not in memory

Sink = Callable[[View, List[Event]], None]


@dataclass(frozen=True)
class RunOptions:
    interval: float = 0.05
    stall_after: float = 2.0
    nameserver: Optional[Tuple[str, int]] = None
    connect_by_name: bool = False
    dns_interval: float = 1.0


class UnavailableProbe:
    """Stands in a column when a backend's library is missing: shown, never run."""

    def __init__(self, endpoint: Endpoint, spec: BackendSpec, reason: str) -> None:
        from fiswatch.model import ErrorInfo

        self.id = probe_id(endpoint, spec)
        self.endpoint = endpoint
        self.snapshot = Snapshot(probe=self.id, endpoint=endpoint.name, backend=spec.label,
                                 state=State.UNAVAILABLE, last_error=ErrorInfo(None, "unavailable", reason))

    def start(self) -> "UnavailableProbe":
        return self

    def stop(self) -> None:
        pass

    def pause(self, paused: bool) -> None:
        pass

    def is_alive(self) -> bool:
        return False


@dataclass
class Runner:
    endpoints: Sequence[Endpoint]
    specs: Sequence[BackendSpec]
    options: RunOptions = field(default_factory=RunOptions)
    topology: Optional[Callable[[str], Tuple[str, ...]]] = None
    status: Optional[Callable[[], Tuple[str, ...]]] = None

    def __post_init__(self) -> None:
        self.sinks: List[Sink] = []
        # the run's rare events (states, DNS, errors, lab steps...); the frequent ones (one
        # `write` per round, a `tick` a second) go only to the sinks, i.e. the record file,
        # so memory stays flat however long the run
        self.history: List[Event] = []
        self.record_path: Optional[str] = None  # the run's record, set by whoever adds the record sink
        self.stop_event = threading.Event()
        self._stop_monitor = threading.Event()
        self.probes: List = []
        infos: Dict[str, BackendInfo] = {}
        # one backend object per spec: validates options once (BackendOptionError -> usage error)
        backends = [(spec, make_backend(spec)) for spec in self.specs]
        self.monitor = Monitor([], {}, stall_after=self.options.stall_after, topology=self.topology,
                               status=self.status)
        emit = self.monitor.emit
        for endpoint in self.endpoints:
            for spec, backend in backends:
                info = backend.info()
                if info.available:
                    probe = Probe(endpoint, spec, backend, emit, interval=self.options.interval,
                                  nameserver=self.options.nameserver, connect_by_name=self.options.connect_by_name)
                else:
                    probe = UnavailableProbe(endpoint, spec, info.reason)
                infos[probe.id] = info
                self.probes.append(probe)
        self.watchers = [DnsWatcher(ep, emit, self.options.nameserver, self.options.dns_interval)
                         for ep in self.endpoints]
        self.monitor.probes = self.probes
        self.monitor.infos = infos
        self.monitor.watchers = self.watchers
        self.infos = infos
        self._thread = threading.Thread(target=self._monitor_loop, name="monitor", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        self.monitor.emit(event)

    def run_start_event(self) -> Event:
        probes = []
        for p in self.probes:
            info = self.infos[p.id]
            probes.append({"probe": p.id, "endpoint": p.endpoint.name, "backend": p.snapshot.backend,
                           "library": info.library, "version": info.version, "notes": info.notes,
                           "timeouts": {k: v for k, v in info.timeouts}, "available": info.available})
        endpoints = [{"name": e.name, "url": e.url(), "host": e.host, "port": e.port, "database": e.database,
                      "table": e.table, "source": e.source} for e in self.endpoints]
        return Event.make("run_start", probes=probes, endpoints=endpoints, stall_after=self.options.stall_after,
                          interval=self.options.interval)

    def start(self) -> "Runner":
        self.emit(self.run_start_event())
        for w in self.watchers:
            w.start()
        for p in self.probes:
            p.start()
        self.step()
        self._thread.start()
        return self

    def step(self) -> View:
        """One monitor tick: new View, events to every sink."""
        view, events = self.monitor.tick()
        self.history.extend(e for e in events if e.event not in FREQUENT)
        for sink in list(self.sinks):
            try:
                sink(view, events)
            except Exception as exc:  # a broken output is dropped and reported once, never fatal
                self.sinks.remove(sink)
                self.emit(Event.make("warning", message="output disabled: %s" % exc))
        return view

    def _monitor_loop(self) -> None:
        while not self._stop_monitor.wait(TICK):
            self.step()

    @property
    def view(self) -> View:
        return self.monitor.view

    def wrote(self) -> bool:
        """Did any probe complete a round (so there are acknowledged writes to verify)?"""
        return any(p.snapshot.iterations for p in self.probes)

    def toggle_pause(self) -> None:
        paused = not self.monitor.paused
        self.monitor.paused = paused
        for p in self.probes:
            p.pause(paused)
        self.emit(Event.make("info", message="paused" if paused else "resumed"))

    def stop(self, closing: Optional[Callable[[], List[Event]]] = None) -> Event:
        """Stop without waiting for probes stuck in a driver; return the summary event.

        `closing` runs once everything is stopped; the events it returns (e.g. the
        verification of the run's writes) reach every sink just before the summary.
        """
        self.stop_event.set()
        for p in self.probes:
            p.stop()
        for w in self.watchers:
            w.stop()
        self._stop_monitor.set()
        if self._thread.is_alive():
            self._thread.join(1.0)
        view = self.step()
        final = list(closing()) if closing is not None else []
        summary = self.monitor.summary(view)
        final.append(summary)
        self.history.extend(e for e in final if e.event not in FREQUENT)
        for sink in list(self.sinks):
            try:
                sink(view, final)
            except Exception:
                pass
        return summary

    def wait(self, duration: Optional[float]) -> None:
        """Block the calling thread until stop_event or the duration is over."""
        deadline = None if duration is None else time.monotonic() + duration
        while not self.stop_event.is_set():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            self.stop_event.wait(0.2 if remaining is None else min(0.2, remaining))
