"""The AWS sources a `watch` run may carry: topology, FIS experiment, CloudWatch.

`AwsExtras.from_args(args, endpoints)` builds what the flags ask for (before the Runner
exists: it hands the Runner its `topology` and `status_lines` callables), then
`attach(runner)` wires events into the runner, adds a sink that submits one View per
second to CloudWatch, and starts the threads; `stop()` ends them.
"""
import argparse
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from fiswatch.model import Endpoint, Event, View

EXPERIMENT_KEY = "x"
STOP_BUDGET = 0.5  # seconds the end of a run waits, in all, for the AWS sources (CloudWatch's last flush)


def topology_endpoints(endpoints: Sequence[Endpoint], cluster_ids: Dict[str, str],
                       instance_ids: Dict[str, str]) -> List[Endpoint]:
    """Endpoints worth asking RDS about: from secrets, or named by --cluster-id/--instance-id."""
    return [e for e in endpoints
            if e.source.startswith("secret:") or e.cluster_id or e.instance_id
            or e.name in cluster_ids or e.name in instance_ids]


class AwsExtras:
    """Topology watcher, experiment watcher and CloudWatch publisher of one run."""

    def __init__(self) -> None:
        self.topology_watcher: Any = None
        self.experiment_watcher: Any = None
        self.publisher: Any = None
        self._lock = threading.Lock()
        self._pending: List[Event] = []
        self._emit_to: Optional[Callable[[Event], None]] = None
        self._last_second: Optional[int] = None
        self.keys: Tuple[Tuple[str, str], ...] = ()
        self.actions: Dict[str, Callable[[], None]] = {}
        self.confirm_keys: Tuple[str, ...] = ()

    def set_experiment_watcher(self, watcher: Any) -> None:
        """Show its status line and bind EXPERIMENT_KEY (y/n confirmation) to start_run."""
        self.experiment_watcher = watcher
        self.keys = ((EXPERIMENT_KEY, "start FIS %s experiment" % watcher.state.target),)
        self.actions = {EXPERIMENT_KEY: watcher.start_run}
        self.confirm_keys = (EXPERIMENT_KEY,)

    # the two callables the Runner takes at construction
    @property
    def topology(self) -> Optional[Callable[[str], Tuple[str, ...]]]:
        return self.topology_watcher.lines if self.topology_watcher is not None else None

    @property
    def status_lines(self) -> Optional[Callable[[], Tuple[str, ...]]]:
        if self.experiment_watcher is None:
            return None
        watcher = self.experiment_watcher
        return lambda: (watcher.status_line(),)

    @classmethod
    def from_args(cls, args: argparse.Namespace, endpoints: Sequence[Endpoint], session: Any = None) -> "AwsExtras":
        """What --secret/--workshop (topology), --experiment and --cloudwatch ask for."""
        from fiswatch.aws.cli import session_from_args, topology_ids

        extras = cls()
        cluster_ids, instance_ids = topology_ids(args, [e.name for e in endpoints])
        targets = topology_endpoints(endpoints, cluster_ids, instance_ids) if getattr(args, "topology", True) else []
        experiment = getattr(args, "experiment", None)
        cloudwatch = bool(getattr(args, "cloudwatch", False))
        if not (targets or experiment or cloudwatch):
            return extras
        session = session if session is not None else session_from_args(args)
        if targets:
            from fiswatch.aws.topology import TopologyWatcher

            extras.topology_watcher = TopologyWatcher(targets, session, extras.emit, cluster_ids=cluster_ids,
                                                      instance_ids=instance_ids)
        if experiment:
            from fiswatch.aws.fis import ExperimentWatcher

            extras.set_experiment_watcher(ExperimentWatcher(session, experiment, extras.emit))
        if cloudwatch:
            from fiswatch.aws.cloudwatch import CloudWatchPublisher, cloudwatch_host

            extras.publisher = CloudWatchPublisher(session, extras.emit,
                                                   host_id=cloudwatch_host(getattr(args, "cloudwatch_host", None)))
        return extras

    def emit(self, event: Event) -> None:
        """Forward to the runner once attached; keep events until then."""
        with self._lock:
            target = self._emit_to
            if target is None:
                self._pending.append(event)
                return
        target(event)

    def sink(self, view: View, events: List[Event]) -> None:
        """A runner sink: one CloudWatch submit per whole second of view time."""
        if self.publisher is None:
            return
        second = int(view.ts)
        if second == self._last_second:
            return
        self._last_second = second
        self.publisher.submit(view)

    def attach(self, runner: Any) -> None:
        with self._lock:
            self._emit_to = runner.emit
            pending, self._pending = self._pending, []
        for event in pending:
            runner.emit(event)
        if self.publisher is not None:
            runner.sinks.append(self.sink)
        for source in (self.topology_watcher, self.experiment_watcher, self.publisher):
            if source is not None:
                source.start()

    def stop(self, budget: float = STOP_BUDGET) -> None:
        """Tell every source to stop at once, then wait for them (the publisher's last flush
        included) at most `budget` seconds in all: AWS never stretches --duration or a quit.
        A source still inside a slow AWS call is left behind (a daemon thread)."""
        sources = [s for s in (self.topology_watcher, self.experiment_watcher, self.publisher) if s is not None]
        for source in sources:
            self._stop_one(source, 0.0)  # sets its stop flag, waits for nothing
        deadline = time.monotonic() + budget
        for source in sources:
            self._stop_one(source, max(0.0, deadline - time.monotonic()))

    @staticmethod
    def _stop_one(source: Any, timeout: float) -> None:
        try:
            source.stop(timeout)
        except Exception:  # noqa: BLE001 - stopping never fails the run
            pass

