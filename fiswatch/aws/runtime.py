"""The AWS sources a `watch` run may carry: topology, FIS experiment, CloudWatch.

`AwsExtras.from_options(options, endpoints, emit)` builds what the flags ask for before
the Runner exists, its sources reporting to `emit` (the run's inbox): it hands the Runner
its `topology` and `status_lines` callables, its key binding and its `outputs` (one
CloudWatch submit per second); `start()` starts the threads once the run starts, `stop()`
ends them.
"""
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

from fiswatch.model import Endpoint, Event, View

if TYPE_CHECKING:
    from fiswatch.aws.cli import AwsOptions
    from fiswatch.engine.runner import Output

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

    def __init__(self, topology_watcher: Any = None, experiment_watcher: Any = None, publisher: Any = None) -> None:
        self.topology_watcher = topology_watcher
        self.experiment_watcher = experiment_watcher
        self.publisher = publisher
        self._last_second: Optional[int] = None
        self.keys: Tuple[Tuple[str, str], ...] = ()
        self.actions: Dict[str, Callable[[], None]] = {}
        self.confirm_keys: Tuple[str, ...] = ()
        if experiment_watcher is not None:  # its status line, and EXPERIMENT_KEY (y/n first) starts a run
            self.keys = ((EXPERIMENT_KEY, "start FIS %s experiment" % experiment_watcher.state.target),)
            self.actions = {EXPERIMENT_KEY: experiment_watcher.start_run}
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
    def from_options(cls, options: "AwsOptions", endpoints: Sequence[Endpoint], emit: Callable[[Event], None],
                     session: Any = None) -> "AwsExtras":
        """What --secret/--workshop (topology), --experiment and --cloudwatch ask for, reporting to `emit`."""
        from fiswatch.aws.cli import session_from_args, topology_ids

        cluster_ids, instance_ids = topology_ids(options, [e.name for e in endpoints])
        targets = topology_endpoints(endpoints, cluster_ids, instance_ids) if options.topology else []
        if not (targets or options.experiment or options.cloudwatch):
            return cls()
        session = session if session is not None else session_from_args(options)
        topology_watcher = experiment_watcher = publisher = None
        if targets:
            from fiswatch.aws.topology import TopologyWatcher

            topology_watcher = TopologyWatcher(targets, session, emit, cluster_ids=cluster_ids,
                                               instance_ids=instance_ids)
        if options.experiment:
            from fiswatch.aws.fis import ExperimentWatcher

            experiment_watcher = ExperimentWatcher(session, options.experiment, emit)
        if options.cloudwatch:
            from fiswatch.aws.cloudwatch import CloudWatchPublisher, cloudwatch_host

            publisher = CloudWatchPublisher(session, emit, host_id=cloudwatch_host(options.cloudwatch_host))
        return cls(topology_watcher, experiment_watcher, publisher)

    def sink(self, view: View, events: List[Event]) -> None:
        """A runner sink: one CloudWatch submit per whole second of view time."""
        if self.publisher is None:
            return
        second = int(view.ts)
        if second == self._last_second:
            return
        self._last_second = second
        self.publisher.submit(view)

    @property
    def outputs(self) -> Tuple["Output", ...]:
        """The Runner outputs these sources need: CloudWatch's submit, with --cloudwatch."""
        from fiswatch.engine.runner import Output

        return (Output(self.sink, "cloudwatch"),) if self.publisher is not None else ()

    def start(self) -> None:
        """Start the sources' threads (when the run starts)."""
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

