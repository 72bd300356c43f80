"""A record's writes, read once and kept as numbers, for `verify`.

`verify` must look every acknowledged write up by id, so it keeps something per write: here
the id, value and time (8 bytes each) and the probe and address as small indexes (4 bytes
each), 32 bytes a write, instead of a dict and a dataclass (about 1 KB). The in-doubt
writes are rare and stay objects.

The lookup goes id range by id range (`by_id`): the writes' indexes are spread into ranges
of about BUCKET writes (4 bytes each), and one range at a time is sorted by (id, time),
so nothing of the size of the whole record is ever sorted or held as Python objects.

Runs: as fiswatch.report.digest, a `run_start` line begins a run; `run=N` keeps the N-th.
"""
from array import array
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from fiswatch.report.coerce import as_float, as_int, as_list, as_text

DEFAULT_TABLE = "test"
BUCKET = 1 << 14  # writes per id range looked up at once
NO_VALUE = -(1 << 63)  # a write recorded without a usable value
_INT64 = (-(1 << 63), 1 << 63)


@dataclass(frozen=True)
class WriteRef:
    """One recorded write, as verify reports it."""

    endpoint: str
    id: Optional[int]
    value: Optional[int]
    probe: str = ""
    address: Optional[str] = None
    ts: float = 0.0
    found: Optional[int] = None  # the value now stored under `id` (changed / reused)
    note: str = ""

    def as_dict(self) -> Dict[str, Any]:
        return {"endpoint": self.endpoint, "id": self.id, "value": self.value, "probe": self.probe,
                "address": self.address, "ts": round(self.ts, 3), "found": self.found, "note": self.note}



@dataclass
class WriteColumns:
    """One endpoint's recorded writes (mutable while reading, local to a verification)."""

    ids: array = field(default_factory=lambda: array("q"))
    values: array = field(default_factory=lambda: array("q"))
    ts: array = field(default_factory=lambda: array("d"))
    probes: array = field(default_factory=lambda: array("i"))  # index into RecordWrites.names
    addresses: array = field(default_factory=lambda: array("i"))  # index into RecordWrites.names (0: none)
    doubts: List[Any] = field(default_factory=list)  # WriteRef: in doubt, or acknowledged without an id

    @property
    def count(self) -> int:
        """Acknowledged writes with an id."""
        return len(self.ids)

    def by_id(self, bucket: Optional[int] = None) -> Iterator[List[int]]:
        """The write indexes in id order (ties in record order), one id range of about `bucket` writes at a time."""
        bucket = bucket or BUCKET
        n = len(self.ids)
        if not n:
            return
        lo, hi = min(self.ids), max(self.ids)
        parts = max(1, n // bucket)
        width = (hi - lo) // parts + 1
        ranges = [array("I") for _ in range(parts)]
        for k, ident in enumerate(self.ids):
            ranges[(ident - lo) // width].append(k)
        for k in range(parts):
            part, ranges[k] = ranges[k], array("I")  # let it go once sorted
            yield sorted(part, key=self.ids.__getitem__)  # stable: record order within an id

    def acked_among(self, wanted: Iterable[int]) -> set:
        """Those ids of `wanted` an acknowledged write holds (one scan, no set of every id)."""
        wanted = set(wanted)
        return {i for i in self.ids if i in wanted} if wanted else set()


@dataclass
class RecordWrites:
    """Every endpoint's writes, the run's `run_start` and how many runs the input held."""

    per: Dict[str, WriteColumns] = field(default_factory=dict)
    tables: Dict[str, str] = field(default_factory=dict)
    names: List[str] = field(default_factory=lambda: [""])  # probes and addresses, interned
    run_start: Optional[Dict[str, Any]] = None
    runs: int = 0
    run: Optional[int] = None
    run_starts: List[float] = field(default_factory=list)

    def name(self, index: int) -> str:
        return self.names[index] if 0 <= index < len(self.names) else ""

    @property
    def head(self) -> List[Dict[str, Any]]:
        """The run's `run_start`, as a list of events for the helpers that read it."""
        return [self.run_start] if self.run_start is not None else []


def collect_writes(events: Iterable[Any], run: Optional[int] = None,
                   table: Optional[str] = None) -> RecordWrites:
    """Read `events` once; keep the writes of run `run` (all when None). `table`: when the record does not say."""
    out = RecordWrites(run=run)
    index = {"": 0}  # type: Dict[str, int]
    default_table = table or DEFAULT_TABLE
    current = 1

    def intern(text: str) -> int:
        found = index.get(text)
        if found is None:
            found = index[text] = len(out.names)
            out.names.append(text)
        return found

    for ev in events:
        if not isinstance(ev, dict):
            continue
        kind = ev.get("event")
        if kind == "run_start":
            out.runs += 1
            out.run_starts.append(as_float(ev.get("ts")) or 0.0)
            current = out.runs
        if run is not None and current != run:
            continue
        if kind == "run_start":
            if out.run_start is None:
                out.run_start = ev
            if not table and isinstance(ev.get("table"), str) and ev["table"]:
                default_table = ev["table"]
            for item in as_list(ev.get("endpoints")):
                if isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("table"), str):
                    out.tables[item["name"]] = item["table"]
        elif kind in ("write", "write_in_doubt"):
            endpoint = as_text(ev.get("endpoint"))
            bucket = out.per.get(endpoint)
            if bucket is None:
                bucket = out.per[endpoint] = WriteColumns()
            ident, value, ts = ev.get("id"), ev.get("value"), ev.get("ts")
            if type(ident) is not int:  # the common case skips the checks
                ident = as_int(ident)
            if type(value) is not int:
                value = as_int(value)
            if kind == "write" and ident is not None and _INT64[0] < ident < _INT64[1]:
                bucket.ids.append(ident)
                bucket.values.append(value if value is not None and _INT64[0] < value < _INT64[1] else NO_VALUE)
                bucket.ts.append(ts if type(ts) is float else (as_float(ts) or 0.0))
                probe, address = ev.get("probe"), ev.get("address")
                bucket.probes.append(intern(probe if type(probe) is str else as_text(probe)))
                bucket.addresses.append(intern(address if type(address) is str else as_text(address)))
                continue
            ref = WriteRef(endpoint=endpoint, id=ident, value=value, probe=as_text(ev.get("probe")),
                           address=as_text(ev.get("address")) or None, ts=as_float(ev.get("ts")) or 0.0)
            if kind == "write":  # acknowledged but no usable id: nothing to look up
                from dataclasses import replace

                ref = replace(ref, note="acknowledged without id")
            bucket.doubts.append(ref)
    for name in out.per:
        out.tables.setdefault(name, default_table)
    return out


def write_ref(data: RecordWrites, endpoint: str, writes: WriteColumns, k: int, **changes: Any) -> Any:
    """The WriteRef of write number `k` (made only for the writes a verdict names)."""
    value = writes.values[k]
    return WriteRef(endpoint=endpoint, id=writes.ids[k], value=None if value == NO_VALUE else value,
                    probe=data.name(writes.probes[k]), address=data.name(writes.addresses[k]) or None,
                    ts=writes.ts[k], **changes)


def groups(writes: WriteColumns, order: List[int]) -> Iterator[Tuple[int, List[int]]]:
    """(id, write indexes newest first) for each id of one sorted range."""
    ids, ts = writes.ids, writes.ts
    start, n = 0, len(order)
    while start < n:
        ident = ids[order[start]]
        end = start + 1
        while end < n and ids[order[end]] == ident:
            end += 1
        if end == start + 1:
            yield ident, [order[start]]
        else:  # an id claimed twice (reused after a crash failover): newest claim first
            yield ident, sorted(order[start:end], key=lambda k: -ts[k])
        start = end
