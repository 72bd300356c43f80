"""CloudWatch metrics, published every second from its own thread.

The workshop's metrics (namespace `fisworkshop`, `aurora_interactions_per_second` and
`rds_interactions_per_second`, no dimensions, unit Count) keep the workshop's dashboards
working; per-probe metrics with dimensions endpoint, backend, host and run let a fleet of
instances running fiswatch aggregate in one view (`fiswatch fleet` reads them back): the
run dimension keeps two runs on one host apart, `state` says exactly what a probe is doing
and `write_gap` how long it has gone without a completed write. `submit()` only computes
numbers and appends to a bounded queue: it never blocks on the network.
"""
import collections
import datetime
import os
import random
import re
import socket
import threading
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from fiswatch import events as E
from fiswatch.aws.session import client, explain
from fiswatch.model import Event, State, View

MAX_PER_CALL = 1000  # PutMetricData accepts up to 1000 metrics per request
QUEUE_LIMIT = 120  # seconds of data kept while CloudWatch is slow; the oldest is dropped
WORKSHOP_METRICS = {"aurora": "aurora_interactions_per_second", "rds": "rds_interactions_per_second"}
BOARD_ASSET_TAG = "/sys/devices/virtual/dmi/id/board_asset_tag"
_INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
HOST_ENV = "FISWATCH_CLOUDWATCH_HOST"  # same as --cloudwatch-host NAME
HOST_MAX = 64
# `state` metric values: what `fiswatch fleet` shows; documented in docs/aws-workshop.md
STATE_CODES = {State.OK: 0, State.STALLED: 1, State.ERROR: 2, State.RECONNECTING: 3, State.CONNECTING: 4,
               State.UNAVAILABLE: 5, State.STOPPED: 6}
PROBE_DIMENSIONS = ("endpoint", "backend", "host", "run")

Datum = Dict[str, Any]
# probe -> (errors, iterations, latency_total, first seen: view.ts of the probe's first second)
Counters = Dict[str, Tuple[int, int, float, float]]


def check_host_name(text: str) -> str:
    """The --cloudwatch-host / FISWATCH_CLOUDWATCH_HOST value, or ValueError with one line.

    >>> check_host_name(" alice ")
    'alice'
    """
    name = str(text).strip()
    if not name or len(name) > HOST_MAX or not all(c.isprintable() and c.isascii() for c in name):
        raise ValueError("host name %r: use 1 to %d printable ASCII characters (e.g. alice or i-0abc...)"
                         % (text, HOST_MAX))
    return name


def host_arg(text: str) -> str:
    """argparse type for --cloudwatch-host: a usage error (exit 2) for an unusable name."""
    from fiswatch.config.checks import arg_type

    return arg_type(check_host_name, "host")(text)


def new_run_id(now: Optional[float] = None) -> str:
    """`20261126T034512-a1b2`: the UTC start time of this run plus 4 random hex digits."""
    stamp = datetime.datetime.fromtimestamp(now if now is not None else time.time(), tz=datetime.timezone.utc)
    return "%s-%04x" % (stamp.strftime("%Y%m%dT%H%M%S"), random.getrandbits(16))


def cloudwatch_host(option: Optional[str] = None, env: Optional[Dict[str, str]] = None) -> Optional[str]:
    """The host name asked for by --cloudwatch-host or FISWATCH_CLOUDWATCH_HOST (None: find it).

    Raises AwsError with one line when the name is unusable.
    """
    from fiswatch.aws.session import AwsError

    for source, value in (("--cloudwatch-host", option),
                          (HOST_ENV, (os.environ if env is None else env).get(HOST_ENV))):
        if value is not None and str(value).strip():
            try:
                return check_host_name(value)
            except ValueError as exc:
                raise AwsError("%s: %s" % (source, exc))
    return None


def host_identity(asset_tag_path: str = BOARD_ASSET_TAG, env: Optional[Dict[str, str]] = None) -> str:
    """FISWATCH_CLOUDWATCH_HOST when set; else the EC2 instance id when the machine tells it
    without a network call; else the host name.

    On Nitro instances the DMI board asset tag holds the instance id; reading it never
    touches the instance-metadata address.
    """
    wanted = (os.environ if env is None else env).get(HOST_ENV, "").strip()
    if wanted:
        try:
            return check_host_name(wanted)
        except ValueError:
            pass  # checked with one clear line before the run starts (runtime.py)
    try:
        with open(asset_tag_path, "r", encoding="ascii", errors="replace") as handle:
            tag = handle.read().strip()
        if _INSTANCE_ID.match(tag):
            return tag
    except OSError:
        pass
    return socket.gethostname() or "unknown-host"


def view_metrics(view: View, counters: Counters, host: str,
                 run: Optional[str] = None) -> Tuple[List[Datum], Counters]:
    """Pure: the metric data for one second of `view`, and the counters for the next call.

    - `<endpoint>_interactions_per_second` for aurora/rds: sum of ops_per_s of its probes
      (no dimensions: the workshop's own metrics, unchanged).
    - per probe, dimensions endpoint/backend/host(/run): interactions (ops_per_s), errors
      (new errors since the last call), stalled (0/1), latency (ms: mean round latency over
      the rounds completed since the last call; while stalled, the time the stuck call has
      run), state (STATE_CODES), write_gap (seconds since the probe's last completed round,
      or since its first second when it has none yet; not for an unavailable backend).
    """
    stamp = datetime.datetime.fromtimestamp(view.ts, tz=datetime.timezone.utc)
    data: List[Datum] = []
    totals: Dict[str, float] = {}
    new_counters: Counters = {}
    for pv in view.probes:
        snap = pv.snapshot
        if snap.endpoint in WORKSHOP_METRICS:
            totals[snap.endpoint] = totals.get(snap.endpoint, 0.0) + float(pv.ops_per_s)
        old = counters.get(snap.probe)
        first_seen = old[3] if old is not None and len(old) > 3 else view.ts
        new_counters[snap.probe] = (snap.errors, snap.iterations, snap.latency_total, first_seen)
        dims = [{"Name": "endpoint", "Value": snap.endpoint}, {"Name": "backend", "Value": snap.backend},
                {"Name": "host", "Value": host}]
        if run:
            dims.append({"Name": "run", "Value": run})
        stalled = pv.state == State.STALLED
        errors = max(0, snap.errors - old[0]) if old else 0
        data.append(_datum("interactions", float(pv.ops_per_s), "Count", stamp, dims))
        data.append(_datum("errors", float(errors), "Count", stamp, dims))
        data.append(_datum("stalled", 1.0 if stalled else 0.0, "None", stamp, dims))
        latency = _latency_ms(pv, old)
        if latency is not None:
            data.append(_datum("latency", latency, "Milliseconds", stamp, dims))
        data.append(_datum("state", float(STATE_CODES.get(pv.state, 2)), "None", stamp, dims))
        if pv.state != State.UNAVAILABLE:
            since = snap.last_ok if snap.last_ok is not None else first_seen
            data.append(_datum("write_gap", round(max(0.0, view.ts - since), 3), "Seconds", stamp, dims))
    for endpoint, total in sorted(totals.items()):
        data.append(_datum(WORKSHOP_METRICS[endpoint], total, "Count", stamp, None))
    return data, new_counters


def _latency_ms(pv: Any, old: Optional[Tuple[int, int, float, float]]) -> Optional[float]:
    snap = pv.snapshot
    if pv.state == State.STALLED:
        return round(pv.stalled_for * 1000.0, 3)
    if old is not None and snap.iterations > old[1]:
        return round((snap.latency_total - old[2]) / (snap.iterations - old[1]) * 1000.0, 3)
    if old is None and snap.latency:
        return round(sum(seconds for _, seconds in snap.latency) * 1000.0, 3)
    return None


def _datum(name: str, value: float, unit: str, stamp: datetime.datetime, dims: Optional[List[Dict[str, str]]]) -> Datum:
    datum: Datum = {"MetricName": name, "Value": value, "Unit": unit, "Timestamp": stamp, "StorageResolution": 1}
    if dims:
        datum["Dimensions"] = dims
    return datum


def batches(data: List[Datum], size: int = MAX_PER_CALL) -> List[List[Datum]]:
    return [data[i:i + size] for i in range(0, len(data), size)]


class CloudWatchPublisher:
    """Publishes one View's worth of metrics per submit(), from its own daemon thread."""

    def __init__(self, session: Any, emit: Callable[[Event], None], namespace: str = "fisworkshop",
                 host_id: Optional[str] = None, run_id: Optional[str] = None) -> None:
        self._session = session
        self._emit = emit
        self._namespace = namespace
        self._host = host_id or host_identity()
        self._run_id = run_id or new_run_id()
        self._queue: Deque[List[Datum]] = collections.deque(maxlen=QUEUE_LIMIT)
        self._counters: Counters = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._failing = False
        self.published = 0  # metric data points accepted by CloudWatch
        self.dropped = 0  # data points given up on (failed calls)

    @property
    def host(self) -> str:
        return self._host

    @property
    def run(self) -> str:
        return self._run_id

    def start(self) -> None:
        if self._thread is None:
            self._emit(E.info("CloudWatch: publishing as host %s, run %s"
                              % (self._host, self._run_id)))
            self._thread = threading.Thread(target=self._run, name="fiswatch-cloudwatch", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Flush what is queued (within `timeout`) and stop the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def submit(self, view: View) -> None:
        """Queue this second's metrics; never blocks (a full queue drops its oldest second)."""
        data, self._counters = view_metrics(view, self._counters, self._host, self._run_id)
        if data:
            self._queue.append(data)
            self._wake.set()

    def _run(self) -> None:
        cw = None
        while True:
            self._wake.wait(1.0)
            self._wake.clear()
            pending: List[Datum] = []
            while self._queue:
                try:
                    pending.extend(self._queue.popleft())
                except IndexError:  # pragma: no cover - raced with nothing, deque is ours
                    break
            if pending:
                try:
                    if cw is None:
                        cw = client(self._session, "cloudwatch")
                    self._publish(cw, pending)
                except Exception as exc:  # noqa: BLE001 - never let the thread die
                    self._failed(explain(exc), len(pending))
            if self._stop.is_set() and not self._queue:
                return

    def _publish(self, cw: Any, data: List[Datum]) -> None:
        for index, chunk in enumerate(batches(data)):
            try:
                cw.put_metric_data(Namespace=self._namespace, MetricData=chunk)
            except Exception as exc:  # noqa: BLE001
                rest = sum(len(c) for c in batches(data)[index:])
                self._failed(explain(exc), rest)
                return
            self.published += len(chunk)
        if self._failing:
            self._failing = False
            self._emit(E.info("CloudWatch: publishing works again"))

    def _failed(self, reason: str, lost: int) -> None:
        self.dropped += lost
        if not self._failing:
            self._failing = True
            self._emit(E.warning("CloudWatch: cannot publish metrics (%s); "
                                 "fiswatch keeps running and retries every second" % reason))
