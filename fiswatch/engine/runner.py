"""Wire probes, DNS watchers and the monitor together, and feed every output.

    endpoints x backends -> Probe threads --snapshots--> Monitor thread --View + events--> sinks
                                                                                         (screen, --plain, --json,
                                                                                          --record, CloudWatch)
The monitor thread ticks every 0.1 s, so a stall shows within stall_after + 0.1 s; it is
the only thread that ticks. Each sink runs in its own thread behind a bounded queue
(fiswatch.output.outlet): a slow, blocked or failing output never delays the monitor, and
none of them ever touches a driver.

At stop the probes get ROUND_GRACE seconds to finish the round in flight, so a write the
server acknowledged just before the stop reaches the record; a probe stuck in a driver
is left behind after that.
"""
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from fiswatch import events as E
from fiswatch.backends.registry import make_backend
from fiswatch.config.tls import TlsOptions
from fiswatch.engine.dnswatch import DnsWatcher
from fiswatch.model import BackendInfo, BackendSpec, Endpoint, Event, Snapshot, State, View
from fiswatch.engine.monitor import Inbox, Monitor
from fiswatch.output.outlet import Outlet
from fiswatch.engine.probe import Probe, probe_id

TICK = 0.1
ROUND_GRACE = 0.5  # seconds the probes get at stop to finish the round in flight
OUTPUT_GRACE = 1.0  # seconds the outputs get at stop to write what is queued
SINK_QUEUE = 2000  # batches (one per tick) an output may fall behind before it drops

Sink = Callable[[View, List[Event]], None]


@dataclass(frozen=True)
class RunOptions:
    interval: float = 0.05
    stall_after: float = 2.0
    nameserver: Optional[Tuple[str, int]] = None
    connect_by_name: bool = False
    dns_interval: float = 1.0
    tls: Optional[TlsOptions] = None  # --ssl-mode / --ssl-ca (None: each driver's default)


@dataclass(frozen=True)
class Output:
    """One output of a run: `sink` gets every (View, events) batch in its own thread.

    `on_error` (default: a warning event) hears a failure once; `drain_first`: at stop, wait
    (OUTPUT_GRACE at most) for this output to write everything before `closing` runs (the
    record: the verification reads it back).
    """

    sink: Sink
    name: str = "output"
    maxsize: int = SINK_QUEUE
    on_error: Optional[Callable[[BaseException], None]] = None
    drain_first: bool = False


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


def check_backends(endpoints: Sequence[Endpoint], specs: Sequence[BackendSpec],
                   tls: Any = None) -> List[Tuple[BackendSpec, Any]]:
    """One backend object per spec, its options validated once, and every endpoint a spec names known.

    Raises ValueError (a --backend naming no endpoint) or what make_backend raises
    (UnknownBackend, BackendOptionError): usage errors, found before anything starts.
    """
    names = {e.name for e in endpoints}
    for spec in specs:
        missing = sorted(set(spec.endpoints) - names)
        if missing:
            raise ValueError("--backend %s/%s: no endpoint named %s (endpoints: %s)"
                             % (",".join(spec.endpoints), spec.label, ", ".join(missing), ", ".join(sorted(names))))
    backends = [(spec, make_backend(spec, tls)) for spec in specs]
    for endpoint in endpoints:  # per-endpoint settings (TLS: a verifying mode needs a CA) fail here too
        for spec, shared in backends:
            if not spec.endpoints or endpoint.name in spec.endpoints:
                shared.for_endpoint(endpoint)
    return backends


class Runner:
    """One run, wired when built: its probes, DNS watchers, monitor and outputs.

    `outputs`: where every tick's View and events go (fiswatch.output.outlet gives each its
    thread); `record_path`: the run's record, when one of the outputs writes it (the
    verification reads it back); `keys`: extra key bindings the View shows (demo's f/r, the
    FIS key); `inbox` and `stop_event`: made by the caller when something built before the
    Runner must report into the run or end it (the outputs' error handlers); `programs`: programs
    followed from the lab's wire (`--exec`), each with a `.snapshot` of ProgramViews the View shows.
    Raises what check_backends raises.
    """

    def __init__(self, endpoints: Sequence[Endpoint], specs: Sequence[BackendSpec],
                 options: RunOptions = RunOptions(), *,
                 topology: Optional[Callable[[str], Tuple[str, ...]]] = None,
                 status: Optional[Callable[[], Tuple[str, ...]]] = None,
                 outputs: Sequence[Output] = (), record_path: Optional[str] = None,
                 keys: Sequence[Tuple[str, str]] = (), inbox: Optional[Inbox] = None,
                 stop_event: Optional[threading.Event] = None, programs: Sequence = (),
                 down: Optional[Callable[[], str]] = None) -> None:
        self.endpoints = tuple(endpoints)
        self.specs = tuple(specs)
        self.options = options
        self.outputs = tuple(outputs)
        self.record_path = record_path
        self.final_events: List[Event] = []  # verification + summary, once stop() ran
        self._outlets: Dict[int, Outlet] = {}
        self._pause_lock = threading.Lock()
        self._last_view: Optional[View] = None
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self._stop_monitor = threading.Event()
        inbox = inbox if inbox is not None else Inbox()
        emit = inbox.emit
        backends = check_backends(self.endpoints, self.specs, options.tls)
        probes: List = []
        infos: Dict[str, BackendInfo] = {}
        for endpoint in self.endpoints:
            for spec, shared in backends:
                if spec.endpoints and endpoint.name not in spec.endpoints:
                    continue
                backend = shared.for_endpoint(endpoint)
                info = backend.info()
                probe: Union[Probe, UnavailableProbe]
                if info.available:
                    probe = Probe(endpoint, spec, backend, emit, interval=options.interval,
                                  nameserver=options.nameserver, connect_by_name=options.connect_by_name)
                else:
                    probe = UnavailableProbe(endpoint, spec, info.reason)
                infos[probe.id] = info
                probes.append(probe)
        self.probes = tuple(probes)
        self.infos = infos
        # a DNS change wakes the endpoint's probes waiting to reconnect (a signal, not data)
        self.watchers = tuple(DnsWatcher(ep, emit, options.nameserver, options.dns_interval,
                                         wakes=[p.wake for p in self.probes if p.endpoint is ep and isinstance(p, Probe)])
                              for ep in self.endpoints)
        self.monitor = Monitor(self.probes, infos, self.watchers, stall_after=options.stall_after,
                               topology=topology, status=status, keys=keys, inbox=inbox, programs=programs,
                               down=down)
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
                      "table": e.table, "source": e.source, **({"reads_from": e.writer} if e.reads else {})}
                     for e in self.endpoints]
        return E.run_start(probes, endpoints, stall_after=self.options.stall_after,
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

    def outlet(self, output: Output) -> Outlet:
        """The queue and thread in front of `output` (made on first use)."""
        outlet = self._outlets.get(id(output))
        if outlet is None:
            sink = output.sink
            outlet = Outlet(output.name, lambda batch: sink(*batch), maxsize=output.maxsize,
                            on_error=output.on_error or self._output_failed(output.name))
            self._outlets[id(output)] = outlet
        return outlet

    def _output_failed(self, name: str) -> Callable[[BaseException], None]:
        def report(exc: BaseException) -> None:  # a broken output is dropped and reported once, never fatal
            self.emit(E.warning("output %s disabled: %s" % (name, exc)))
        return report

    def step(self) -> View:
        """One monitor tick: new View, events queued for every sink. Only the monitor thread calls it
        once the run started."""
        view, events = self.monitor.tick()
        self._deliver(view, events)
        return view

    def _deliver(self, view: View, events: List[Event]) -> None:
        for output in self.outputs:
            self.outlet(output).put((view, events))

    def _monitor_loop(self) -> None:
        while not self._stop_monitor.wait(TICK):
            self.step()
        self._last_view = self.step()  # the last tick: events the probes emitted while stopping

    @property
    def view(self) -> View:
        return self.monitor.view

    def wrote(self) -> bool:
        """Did any write probe complete a round (so there are acknowledged writes to verify)?"""
        return any(p.snapshot.iterations for p in self.probes if not p.endpoint.reads)

    def toggle_pause(self) -> None:
        """Pause or resume every probe; safe from several threads at once (two key presses)."""
        with self._pause_lock:
            paused = not self.monitor.paused
            self.monitor.paused = paused
            for p in self.probes:
                p.pause(paused)
            self.emit(E.info("paused" if paused else "resumed", pause=paused))

    def stop(self, closing: Optional[Callable[[], List[Event]]] = None) -> Event:
        """Stop without waiting long for probes stuck in a driver; return the summary event.

        The probes get ROUND_GRACE seconds to finish their round; the monitor's last tick
        hands their events to the sinks, whose queues get OUTPUT_GRACE seconds to reach
        disk before `closing` runs (it reads the record: the verification of the run's
        writes); its events and the summary reach every sink last.
        """
        self.stop_event.set()
        self.emit(E.run_stop())  # where open gaps and stalls end in the report (not after verifying)
        for p in self.probes:
            p.stop()
        for w in self.watchers:
            w.stop()
        deadline = time.monotonic() + ROUND_GRACE
        for p in self.probes:
            join = getattr(p, "join", None)
            if join is not None and p.is_alive():
                join(max(0.0, deadline - time.monotonic()))
        for p in self.probes:  # a COMMIT still in flight after the grace: in doubt, id and value known
            doubt = p.in_doubt_at_stop() if isinstance(p, Probe) else None
            if doubt is not None:
                self.emit(doubt)
        self._stop_monitor.set()
        if self._thread.is_alive():
            self._thread.join(1.0)
        if self._thread.ident is None:  # never started: nobody else ticks
            view = self.step()
        else:
            view = self._last_view or self.monitor.view
        self.flush_outputs(OUTPUT_GRACE, only=[o for o in self.outputs if o.drain_first])
        final = list(closing()) if closing is not None else []
        summary = self.monitor.summary(view)
        final.append(summary)
        self.final_events = final
        self._deliver(view, final)
        self.close_outputs(OUTPUT_GRACE)
        return summary

    def flush_outputs(self, timeout: float, only: Optional[Sequence[Output]] = None) -> bool:
        """Wait (at most `timeout` s in all) until the outputs (those in `only`, if given) wrote what they got."""
        deadline = time.monotonic() + timeout
        done = True
        for output in (self.outputs if only is None else only):
            outlet = self._outlets.get(id(output))
            if outlet is not None:
                done = outlet.flush(max(0.0, deadline - time.monotonic())) and done
        return done

    def close_outputs(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for outlet in list(self._outlets.values()):
            outlet.close(max(0.0, deadline - time.monotonic()))

    def wait(self, duration: Optional[float]) -> None:
        """Block the calling thread until stop_event or the duration is over."""
        deadline = None if duration is None else time.monotonic() + duration
        while not self.stop_event.is_set():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            self.stop_event.wait(0.2 if remaining is None else min(0.2, remaining))
