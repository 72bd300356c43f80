"""Lost writes: every acknowledged INSERT id the wire saw, looked up on its cluster's current writer.

Inserts come from the ledger as "endpoint/db.table" -> [[first id, rows], ...]. For each table
the auto-increment column is read from information_schema; the ids of each range are fetched
from the writer (as root over its unix socket, never through a proxy) in windows of at most
WINDOW ids; an id not there is LOST. What cannot be checked is said, not implied: a table with
no auto-increment column, a table that is gone, a table without a schema.
"""
from typing import Any, Dict, List, Tuple

WINDOW = 100000


def check(lab_dir: str, inserts: Dict[str, List[List[int]]], unverifiable: Dict[str, int]) -> Dict[str, Any]:
    """{"checked": ids looked up, "lost": [(table, id)...], "unverifiable": {why: count}} or {"error": why}."""
    from fiswatch.lab import layout as L
    from fiswatch.lab.api import LabError, lab_status
    from fiswatch.lab.mariadb import root_connect

    out: Dict[str, Any] = {"checked": 0, "lost": [], "unverifiable": dict(unverifiable)}
    if not inserts:
        return out
    try:
        info = lab_status(lab_dir)
    except LabError as exc:
        return {"error": str(exc), "unverifiable": dict(unverifiable)}
    by_endpoint: Dict[str, List[Tuple[str, List[List[int]]]]] = {}
    for key, ranges in inserts.items():
        endpoint, _, table = key.partition("/")
        by_endpoint.setdefault(endpoint, []).append((table, ranges))
    for endpoint, tables in by_endpoint.items():
        try:
            # Aurora's and the Multi-AZ cluster's writer, RDS's primary
            writer = next(i for i in info.instances if i.cluster == endpoint and i.role in ("writer", "primary"))
            spec = L.spec_by_name(writer.name)
            socket_path = L.Layout(dir=info.dir).server_socket(spec)
            conn = root_connect(socket_path, 10.0)
        except Exception as exc:  # noqa: BLE001
            return {"error": "cannot reach the %s writer: %s" % (endpoint, exc), "unverifiable": dict(unverifiable)}
        try:
            for table, ranges in tables:
                _check_table(conn, endpoint, table, ranges, out)
        finally:
            conn.close()
    return out


def _check_table(conn: Any, endpoint: str, table: str, ranges: List[List[int]], out: Dict[str, Any]) -> None:
    count = sum(rows for _, rows in ranges)
    if "." not in table:
        out["unverifiable"]["INSERT into a table without a schema"] = \
            out["unverifiable"].get("INSERT into a table without a schema", 0) + count
        return
    schema, name = table.split(".", 1)
    with conn.cursor() as cur:
        cur.execute("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
                    "AND EXTRA LIKE %s", (schema, name, "%auto_increment%"))
        row = cur.fetchone()
        if row is None:
            why = "INSERT into %s (no auto-increment column, or the table is gone)" % table
            out["unverifiable"][why] = out["unverifiable"].get(why, 0) + count
            return
        column = "`%s`" % row[0].replace("`", "``")
        quoted = "`%s`.`%s`" % (schema.replace("`", "``"), name.replace("`", "``"))
        for first, rows in ranges:
            lo = first
            while lo < first + rows:
                hi = min(first + rows, lo + WINDOW) - 1
                cur.execute("SELECT %s FROM %s WHERE %s BETWEEN %%s AND %%s" % (column, quoted, column), (lo, hi))
                present = {r[0] for r in cur.fetchall()}
                for i in range(lo, hi + 1):
                    if i not in present:
                        out["lost"].append(("%s/%s" % (endpoint, table), i))
                out["checked"] += hi - lo + 1
                lo = hi + 1
