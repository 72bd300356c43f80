"""Reading the room back from CloudWatch: ListMetrics + GetMetricData, cached incrementally.

`FleetSource.fetch(now)` lists the probe series (`state` metrics with dimensions endpoint,
backend, host, run; ListMetrics, paginated, at most every `list_every` seconds), asks
GetMetricData for the per-second `state` and `write_gap` of each (at most 500 queries per
call, NextToken followed), and keeps the samples in a cache so that each later fetch
only asks for the last `OVERLAP` seconds again. Samples older than that are folded into
each probe's statistics (longest gap, stalled since `since`) and dropped, so memory stays
flat however long the session. Without --since, `since` is the window's start at the
first read (the statistics then cover the whole time the instructor has been watching). What CloudWatch is asked costs money:
`api` counts calls and metrics requested (GetMetricData is billed per metric requested).

Read-only: this module never writes to CloudWatch (the dashboard is fleet_dashboard.py).
"""
import datetime
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from fiswatch.aws.fleet_model import Fleet, ProbeSeries, SeriesKey, build_fleet, longest_gap

NAMESPACE = "fisworkshop"
MAX_QUERIES = 500  # GetMetricData: at most 500 MetricDataQuery per call
HIGH_RES_RETENTION = 3 * 3600  # 1-second data is kept 3 hours
OVERLAP = 60.0  # seconds asked again on every fetch: late datapoints land in them
LIST_EVERY = 60.0
METRICS = ("state", "write_gap")
THROTTLE_CODES = ("throttling", "throttlingexception", "requestlimitexceeded", "toomanyrequestsexception",
                  "limitexceeded")

Series = Dict[SeriesKey, Dict[str, Dict[float, float]]]


def is_throttle(exc: BaseException) -> bool:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", "")).lower()
    return "throttl" in code or code in THROTTLE_CODES


def series_key(metric: Dict[str, Any]) -> Optional[SeriesKey]:
    """The SeriesKey of a ListMetrics entry; None for one without all four dimensions
    (a fiswatch older than the run dimension, or someone else's metric)."""
    dims = {d.get("Name"): d.get("Value") for d in metric.get("Dimensions", [])}
    if len(dims) != 4 or not all(dims.get(name) for name in ("endpoint", "backend", "host", "run")):
        return None
    return SeriesKey(dims["endpoint"], dims["backend"], dims["host"], dims["run"])


def metric_queries(keys: Sequence[SeriesKey], namespace: str = NAMESPACE) -> List[Dict[str, Any]]:
    """Two MetricDataQuery per key (state, write_gap; Maximum per second), ids q<key>_<metric>."""
    queries = []
    for index, key in enumerate(keys):
        dims = [{"Name": "endpoint", "Value": key.endpoint}, {"Name": "backend", "Value": key.backend},
                {"Name": "host", "Value": key.host}, {"Name": "run", "Value": key.run}]
        for m, name in enumerate(METRICS):
            queries.append({"Id": "q%d_%d" % (index, m), "ReturnData": True,
                            "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dims},
                                           "Period": 1, "Stat": "Maximum"}})
    return queries


def chunks(items: Sequence[Any], size: int = MAX_QUERIES) -> List[Sequence[Any]]:
    """
    >>> [len(c) for c in chunks(list(range(1001)))]
    [500, 500, 1]
    """
    return [items[i:i + size] for i in range(0, len(items), size)]


def _utc(ts: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)


def _epoch(stamp: Any) -> float:
    if isinstance(stamp, datetime.datetime):
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=datetime.timezone.utc)
        return stamp.timestamp()
    return float(stamp)


class FleetSource:
    """The room's samples, fetched from CloudWatch and kept between fetches.

    Not thread-safe by itself: one thread calls `fetch()`; it returns a frozen Fleet.
    """

    def __init__(self, cloudwatch: Any, minutes: float, since: Optional[float] = None, since_label: str = "",
                 namespace: str = NAMESPACE, silent_after: float = 30.0, list_every: float = LIST_EVERY) -> None:
        self._cw = cloudwatch
        self.minutes = minutes
        self.since = since
        self.since_label = since_label
        self.namespace = namespace
        self.silent_after = silent_after
        self.list_every = list_every
        self._keys: List[SeriesKey] = []
        self._listed_at: Optional[float] = None
        self._fetched_until: Optional[float] = None
        self._series: Series = {}
        self._settled: Dict[SeriesKey, Tuple[Optional[float], bool]] = {}
        self.calls: Dict[str, int] = {"ListMetrics": 0, "GetMetricData": 0, "metrics_requested": 0}

    def window(self, now: float) -> Tuple[float, float]:
        """(window_start, since): hosts seen since window_start; statistics from since (fixed at
        the first read when not given)."""
        window_start = now - self.minutes * 60.0
        if self.since is None:
            self.since = window_start
        return window_start, self.since

    def fetch(self, now: Optional[float] = None, notes: Sequence[str] = ()) -> Fleet:
        """List (when due), read the new samples, and build the Fleet. Raises botocore errors."""
        now = time.time() if now is None else now
        window_start, since = self.window(now)
        oldest = max(min(window_start, since), now - HIGH_RES_RETENTION + 60)
        if self._listed_at is None or now - self._listed_at >= self.list_every:
            self._keys = self.list_keys()
            self._listed_at = now
        start = oldest if self._fetched_until is None else max(oldest, self._fetched_until - OVERLAP)
        self.read(self._keys, start, now + 1)
        self._fetched_until = now
        self._prune(window_start)
        self._fold(now - OVERLAP, since)
        series = {key: self._probe_series(key) for key in self._series}
        label = self.since_label or "window start"
        return build_fleet(series, now, window_start, since, label, self.silent_after, notes,
                           tuple(sorted(self.calls.items())))

    def list_keys(self) -> List[SeriesKey]:
        """Every probe series published in the last 3 hours (ListMetrics, all pages)."""
        keys: Dict[SeriesKey, None] = {}  # ordered, and each once (moto lists a metric once per datapoint)
        token: Optional[str] = None
        while True:
            kwargs: Dict[str, Any] = {"Namespace": self.namespace, "MetricName": "state", "RecentlyActive": "PT3H"}
            if token:
                kwargs["NextToken"] = token
            answer = self._cw.list_metrics(**kwargs)
            self.calls["ListMetrics"] += 1
            for metric in answer.get("Metrics", []):
                key = series_key(metric)
                if key is not None:
                    keys[key] = None
            token = answer.get("NextToken")
            if not token:
                return list(keys)

    def read(self, keys: Sequence[SeriesKey], start: float, end: float) -> None:
        """GetMetricData for `keys` over [start, end): batches of 500 queries, every page."""
        queries = metric_queries(keys, self.namespace)
        by_id = {q["Id"]: (keys[int(q["Id"][1:].split("_")[0])], METRICS[int(q["Id"].split("_")[1])])
                 for q in queries}
        start_dt, end_dt = _utc(int(start)), _utc(int(end) + 1)
        for batch in chunks(queries):
            token: Optional[str] = None
            while True:
                kwargs: Dict[str, Any] = {"MetricDataQueries": list(batch), "StartTime": start_dt, "EndTime": end_dt,
                                          "ScanBy": "TimestampAscending"}
                if token:
                    kwargs["NextToken"] = token
                answer = self._cw.get_metric_data(**kwargs)
                self.calls["GetMetricData"] += 1
                self.calls["metrics_requested"] += len(batch)
                for result in answer.get("MetricDataResults", []):
                    target = by_id.get(result.get("Id", ""))
                    if target is None:
                        continue
                    samples = self._series.setdefault(target[0], {}).setdefault(target[1], {})
                    for stamp, value in zip(result.get("Timestamps", []), result.get("Values", [])):
                        samples[_epoch(stamp)] = float(value)
                token = answer.get("NextToken")
                if not token:
                    break

    def _prune(self, window_start: float) -> None:
        """Forget probes whose newest sample is older than the window (their host left)."""
        for key in list(self._series):
            if max((max(v) for v in self._series[key].values() if v), default=0.0) < window_start:
                del self._series[key]
                self._settled.pop(key, None)

    def _fold(self, horizon: float, since: float) -> None:
        """Fold samples older than `horizon` (never asked for again) into the settled statistics,
        keeping each metric's newest sample (a silent probe's last word). Folding twice is
        harmless: a maximum and an "ever stalled" do not count twice."""
        for key, metrics in self._series.items():
            gap, stalled = self._settled.get(key, (None, False))
            gaps = metrics.get("write_gap", {})
            old = sorted((ts, v) for ts, v in gaps.items() if ts < horizon)
            if old:
                folded = longest_gap(tuple(old), since, horizon, False)
                if folded is not None:
                    gap = folded if gap is None else max(gap, folded)
            states = metrics.get("state", {})
            stalled = stalled or any(v == 1 for ts, v in states.items() if since <= ts < horizon)
            self._settled[key] = (gap, stalled)
            for samples in metrics.values():
                newest = max(samples) if samples else None
                for ts in [ts for ts in samples if ts < horizon and ts != newest]:
                    del samples[ts]

    def _probe_series(self, key: SeriesKey) -> ProbeSeries:
        metrics = self._series[key]
        gap, stalled = self._settled.get(key, (None, False))
        return ProbeSeries(states=tuple(sorted(metrics.get("state", {}).items())),
                           gaps=tuple(sorted(metrics.get("write_gap", {}).items())), settled_gap=gap,
                           settled_stalled=stalled)


def experiment_start(session: Any, client_factory: Any, now: Optional[float] = None) -> Optional[Tuple[float, str]]:
    """(start time, "FIS <id> <name>") of the newest FIS experiment started in the last 3 hours.

    One or a few ListExperiments calls (read-only). None when there is none.
    """
    fis = client_factory(session, "fis")
    best: Optional[Tuple[float, str]] = None
    token: Optional[str] = None
    now = time.time() if now is None else now
    while True:
        answer = fis.list_experiments(**({"nextToken": token} if token else {}))
        for exp in answer.get("experiments", []):
            stamp = exp.get("startTime") or exp.get("creationTime")
            if stamp is None:
                continue
            ts = _epoch(stamp)
            if now - ts > HIGH_RES_RETENTION:
                continue
            name = (exp.get("tags") or {}).get("Name", "")
            label = ("FIS %s %s" % (exp.get("id", "?"), name)).strip()
            if best is None or ts > best[0]:
                best = (ts, label)
        token = answer.get("nextToken")
        if not token:
            return best
