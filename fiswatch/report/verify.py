"""Did every acknowledged write survive the failover?

A write is *acknowledged* when its COMMIT returned (`write` event) and *in doubt* when the
COMMIT (or the INSERT) was sent but no answer came back (`write_in_doubt` event). `verify`
reads the record's events, connects to each endpoint's current writer and looks the ids up
in batches:

- lost: an acknowledged row is missing, or its id now holds the row of a later
  acknowledged write (a promoted replica that missed the row hands the same
  AUTO_INCREMENT id out again);
- changed: the row is there with another value;
- in doubt, committed / not committed: the row with that id and value is / is not there.

Rows are compared per (endpoint, id): several probes write to the same endpoint's table.

Another database is refused, not called lost: when (almost) none of the acknowledged rows
is there (see FOREIGN_SHARE), the endpoint's verdict is an `error` saying so, because
another lab, a lab started again or the wrong server would otherwise read as "every write
lost". An in-doubt write still in flight when the run stopped (`at_stop`) is resolved like
any other.
"""
import re
from array import array
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from fiswatch.report.writes import WriteRef

DEFAULT_TABLE = "test"
CHUNK = 1000
# A run's rows are (id, random value 0..32767): another database holds one by chance about once
# in 32768 ids. Fewer than 1 in FOREIGN_SHARE of the acknowledged writes found (none at all for
# a run of under FOREIGN_SHARE writes) means another database, not a loss: it is refused.
FOREIGN_SHARE = 100
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_$]{1,64}(\.[A-Za-z0-9_$]{1,64})?$")


@dataclass(frozen=True)
class EndpointVerify:
    """The verdict for one endpoint's table."""

    endpoint: str
    table: str
    acknowledged: int
    lost: Tuple[WriteRef, ...] = ()
    changed: Tuple[WriteRef, ...] = ()
    in_doubt_committed: Tuple[WriteRef, ...] = ()
    in_doubt_not_committed: Tuple[WriteRef, ...] = ()
    in_doubt_unknown: Tuple[WriteRef, ...] = ()  # no id recorded: cannot be looked up
    error: Optional[str] = None  # could not verify (connection or query failed)
    server: str = ""  # what answered, e.g. "127.0.0.1:3306 read_only=0"
    warnings: Tuple[str, ...] = ()

    @property
    def lost_ids(self) -> Tuple[int, ...]:
        return tuple(ref.id for ref in self.lost if ref.id is not None)

    @property
    def changed_ids(self) -> Tuple[int, ...]:
        return tuple(ref.id for ref in self.changed if ref.id is not None)

    @property
    def in_doubt(self) -> int:
        return len(self.in_doubt_committed) + len(self.in_doubt_not_committed) + len(self.in_doubt_unknown)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.lost and not self.changed

    def as_dict(self) -> Dict[str, Any]:
        return {
            "endpoint": self.endpoint, "table": self.table, "ok": self.ok,
            "acknowledged": self.acknowledged, "lost": [r.as_dict() for r in self.lost],
            "changed": [r.as_dict() for r in self.changed],
            "in_doubt_committed": [r.as_dict() for r in self.in_doubt_committed],
            "in_doubt_not_committed": [r.as_dict() for r in self.in_doubt_not_committed],
            "in_doubt_unknown": [r.as_dict() for r in self.in_doubt_unknown],
            "error": self.error, "server": self.server, "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class VerifyResult:
    endpoints: Tuple[EndpointVerify, ...] = ()

    @property
    def ok(self) -> bool:
        return all(item.ok for item in self.endpoints)

    @property
    def lost(self) -> int:
        return sum(len(item.lost) + len(item.changed) for item in self.endpoints)

    @property
    def failed(self) -> bool:
        """True when some endpoint could not be checked at all."""
        return any(item.error is not None for item in self.endpoints)

    def endpoint(self, name: str) -> Optional[EndpointVerify]:
        for item in self.endpoints:
            if item.endpoint == name:
                return item
        return None

    def as_dict(self) -> Dict[str, Any]:
        return {"ok": self.ok, "endpoints": [item.as_dict() for item in self.endpoints]}


def collect(events: Iterable[Dict[str, Any]]) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """Writes per endpoint (fiswatch.report.writes.WriteColumns) and table name per endpoint."""
    from fiswatch.report.writes import collect_writes

    found = collect_writes(events)
    return found.per, found.tables


def fetch_rows(conn: Any, table: str, ids: Sequence[int], chunk: int = CHUNK) -> Dict[int, Optional[int]]:
    """{id: value} for the ids present in `table`, looked up `chunk` ids per query."""
    if not _TABLE_NAME.match(table):
        raise ValueError("bad table name %r" % table)
    quoted = ".".join("`%s`" % part for part in table.split("."))
    found = {}  # type: Dict[int, Optional[int]]
    ordered = sorted(set(ids))
    cur = conn.cursor()
    try:
        for start in range(0, len(ordered), chunk):
            part = ordered[start:start + chunk]
            sql = "SELECT id, value FROM %s WHERE id IN (%s)" % (quoted, ",".join(["%s"] * len(part)))
            cur.execute(sql, tuple(part))
            for row_id, value in cur.fetchall():
                found[int(row_id)] = None if value is None else int(value)
    finally:
        try:
            cur.close()
        except Exception:  # pragma: no cover - closing a cursor on a dead link  # noqa: BLE001
            pass
    return found


def _server_facts(conn: Any) -> Tuple[str, Tuple[str, ...]]:
    """`host read_only=N` of the server answering, and a warning if it is read-only."""
    try:
        cur = conn.cursor()
        cur.execute("SELECT @@hostname, @@port, @@read_only")
        host, port, read_only = cur.fetchone()
        cur.close()
    except Exception:  # noqa: BLE001 - facts only; the lookup itself decides
        return "", ("could not tell whether the server answering is the writer: rows may not be there yet",)
    text = "%s:%s read_only=%s" % (host, port, read_only)
    if str(read_only) not in ("0", "OFF", "False"):
        return text, ("the server answering is read-only (a reader?): rows may not be there yet",)
    return text, ()


def verify_endpoint(name: str, table: str, data: Any, conn: Any, chunk: int = CHUNK,
                    record: Any = None) -> EndpointVerify:
    """Compare one endpoint's recorded writes (a WriteColumns of `record`) with its table, through an open
    connection; one id range at a time, so memory holds one range's rows, not the table's."""
    from fiswatch.report.writes import NO_VALUE, RecordWrites, groups, write_ref

    record = record if record is not None else RecordWrites(names=[""])
    server, warnings = _server_facts(conn)
    lost_at, changed_at = array("q"), array("q")  # write indexes; WriteRefs made once the verdict stands
    reused, found_lost, found_changed = array("b"), array("q"), array("q")
    present = 0
    values = data.values
    for order in data.by_id():
        ids = sorted({data.ids[k] for k in order})
        rows = fetch_rows(conn, table, ids, chunk)
        for row_id, claims in groups(data, order):  # newest claim first
            here = row_id in rows
            stored = rows.get(row_id)
            matched = False
            for k in claims:
                value = values[k]
                value = None if value == NO_VALUE else value
                if not here:
                    lost_at.append(k)
                    reused.append(0)
                    found_lost.append(0)
                elif value == stored and not matched:
                    matched = True
                elif len(claims) > 1:
                    lost_at.append(k)
                    reused.append(1)
                    found_lost.append(_NONE if stored is None else stored)
                else:
                    changed_at.append(k)
                    found_changed.append(_NONE if stored is None else stored)
            if here and matched:
                present += 1
    count = data.count
    if count and present * FOREIGN_SHARE < count:
        return EndpointVerify(endpoint=name, table=table, acknowledged=count, server=server, warnings=warnings,
                              error=foreign_error(count, present, table, server))
    lost = [write_ref(record, name, data, k, found=None if not again else _back(f),
                      note="id reused by a later write" if again else "missing")
            for k, again, f in zip(lost_at, reused, found_lost)]
    lost.sort(key=lambda r: (r.id, -r.ts))
    changed = [write_ref(record, name, data, k, found=_back(f), note="value differs")
               for k, f in zip(changed_at, found_changed)]
    doubt_ids = [ref.id for ref in data.doubts if ref.id is not None]
    rows = fetch_rows(conn, table, doubt_ids, chunk) if doubt_ids else {}
    acked = data.acked_among(doubt_ids)
    committed, not_committed, unknown = [], [], []  # type: List[WriteRef], List[WriteRef], List[WriteRef]
    for ref in data.doubts:
        if ref.id is None:
            unknown.append(ref if ref.note else _with(ref, note="no id recorded"))
        elif ref.id in rows and rows[ref.id] == ref.value and ref.id not in acked:
            committed.append(_with(ref, found=rows[ref.id]))
        elif ref.id in rows and rows[ref.id] == ref.value:
            committed.append(_with(ref, found=rows[ref.id], note="also acknowledged"))
        elif ref.id in rows:
            not_committed.append(_with(ref, found=rows[ref.id], note="id holds another row"))
        else:
            not_committed.append(_with(ref, note="missing"))
    return EndpointVerify(endpoint=name, table=table, acknowledged=count, lost=tuple(lost),
                          changed=tuple(changed), in_doubt_committed=tuple(committed),
                          in_doubt_not_committed=tuple(not_committed), in_doubt_unknown=tuple(unknown),
                          server=server, warnings=warnings)


_NONE = -(1 << 63)  # a stored NULL value, in the int arrays


def _back(found: int) -> Optional[int]:
    return None if found == _NONE else found


def foreign_error(acknowledged: int, present: int, table: str, server: str) -> str:
    """Why a database holding (almost) none of a run's writes is refused rather than called LOST."""
    return ("refused: %s of the %d acknowledged writes %s in table %s on %s, so this is most likely not the "
            "database the run wrote to (another lab, a lab started again, or another server); if it is, every "
            "write was lost - fiswatch cannot tell which. Point --endpoint / --lab at the run's database"
            % ("none" if not present else "only %d" % present, acknowledged, "is" if not present else "are",
               table, server or "the server answering"))


def _with(ref: WriteRef, **changes: Any) -> WriteRef:
    from dataclasses import replace

    return replace(ref, **changes)


def verify(events: Any, connect: Callable[[str], Any], chunk: int = CHUNK) -> VerifyResult:
    """Check a run's writes against each endpoint's current writer.

    `events`: event dicts (read once), or their fiswatch.report.writes.RecordWrites.
    `connect(endpoint_name)` returns an open DB-API connection (format paramstyle, as
    PyMySQL and mysql-connector use) to that endpoint's writer; it is closed here. A
    connection or query error becomes that endpoint's `error`, never an exception.
    """
    from fiswatch.report.writes import RecordWrites, collect_writes

    record = events if isinstance(events, RecordWrites) else collect_writes(events)
    per, tables = record.per, record.tables
    results = []
    for name in sorted(per):
        data, table = per[name], tables[name]
        conn = None
        try:
            conn = connect(name)
            results.append(verify_endpoint(name, table, data, conn, chunk, record))
        except Exception as exc:  # noqa: BLE001 - one clear line per endpoint, never a traceback
            results.append(EndpointVerify(endpoint=name, table=table, acknowledged=data.count,
                                          error=_one_line(exc)))
        finally:
            if conn is not None:
                try:
                    conn.close()
                except Exception:  # pragma: no cover  # noqa: BLE001
                    pass
    return VerifyResult(tuple(results))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return "%s: %s" % (exc.__class__.__name__, text) if text else exc.__class__.__name__


def _ids(refs: Sequence[WriteRef], limit: int = 8) -> str:
    shown = ", ".join(str(r.id) for r in refs[:limit])
    return shown + (", ... (%d more)" % (len(refs) - limit) if len(refs) > limit else "")


def render_verify(result: VerifyResult) -> List[str]:
    """Text lines: one verdict line per endpoint plus a line per kind of problem."""
    lines = []
    if not result.endpoints:
        return ["verify: the record holds no writes to check"]
    for item in result.endpoints:
        head = "%s (table %s)" % (item.endpoint, item.table)
        if item.error is not None:
            lines.append("%s: NOT VERIFIED - %s" % (head, item.error))
            continue
        verdict = "OK" if item.ok else "LOST WRITES"
        lines.append("%s: %s - %d acknowledged, %d lost, %d changed; in doubt: %d committed, "
                     "%d not committed%s" % (
                         head, verdict, item.acknowledged, len(item.lost), len(item.changed),
                         len(item.in_doubt_committed), len(item.in_doubt_not_committed),
                         ", %d without id" % len(item.in_doubt_unknown) if item.in_doubt_unknown else ""))
        if item.lost:
            lines.append("  lost ids: %s" % _ids(item.lost))
            reused = [r for r in item.lost if r.note.startswith("id reused")]
            if reused:
                lines.append("  (%d of them: the id now holds a later write - the new writer never got the row)"
                             % len(reused))
        if item.changed:
            lines.append("  changed: %s" % ", ".join("%s (%s -> %s)" % (r.id, r.value, r.found)
                                                   for r in item.changed[:8]))
        for warning in item.warnings:
            lines.append("  warning: %s" % warning)
    return lines
