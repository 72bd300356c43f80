"""Figure: `fiswatch report` and `fiswatch verify` on large records, peak memory and time.

A record of SIZE MB is written in the shape of a real run (two endpoints, two probes each
writing every 50 ms, a `tick` a second, states, DNS, the closing `verify` and `summary`),
and the rows it acknowledges are put into the bench database's tables (MariaDB's SEQUENCE
engine, so the check finds them all). Then each command runs in a child process of its
own, and its peak RSS comes from wait4() (the kernel's high-water mark, not a sample).

Figures per size (20 MB and 200 MB by default): peak RSS of `report` and of `verify`
(target: at most 150 MB), seconds per GB; and the slope between the sizes, in MB per
million acknowledged writes (what the per-id check keeps: flat in everything else).
The baseline is the same commands on a record of a few writes, in the same run.

Run alone: `python -m fiswatch.bench.record_memory [--sizes 20,200] [--keep DIR]`
(the machine's MariaDB on 127.0.0.1:3306, root with an empty password).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from fiswatch import events as E
from fiswatch.bench.common import BenchDb, Figure, drop_user, root_connect, setup_database

TARGET_MB = 150.0
ENDPOINTS = ("a", "b")
BACKENDS = ("mysql-connector", "pymysql")
INTERVAL = 0.05


def value_of(row_id: int) -> int:
    """The value the synthetic run wrote with id `row_id` (as the rows put into the table)."""
    return (row_id * 7919) % 32768


def write_record(path: str, size_mb: float, db: BenchDb, tables: Dict[str, str]) -> Dict[str, int]:
    """A record of about `size_mb` MB; returns acknowledged writes per endpoint (ids 1..N each)."""
    t0 = 1_800_000_000.0
    probes = ["%s/%s" % (e, b) for e in ENDPOINTS for b in BACKENDS]
    head = {"ts": t0, "event": E.RUN_START, "stall_after": 2.0, "interval": INTERVAL,
            "probes": [{"probe": p, "endpoint": p.split("/")[0], "backend": p.split("/")[1], "library": "bench",
                        "version": "1", "timeouts": {}, "available": True} for p in probes],
            "endpoints": [{"name": e, "url": "mysql://%s@%s:%d/%s" % (db.user, db.host, db.port, db.database),
                           "host": db.host, "port": db.port, "database": db.database, "table": tables[e],
                           "source": "bench"} for e in ENDPOINTS]}
    limit = int(size_mb * 1e6)
    next_id = {e: 0 for e in ENDPOINTS}
    step = INTERVAL / len(BACKENDS)
    with open(path, "w") as out:
        def put(event: Dict[str, Any]) -> int:
            line = json.dumps(event, separators=(",", ":")) + "\n"
            out.write(line)
            return len(line)

        written = put(head)
        for p in probes:
            written += put({"ts": t0 + 0.1, "event": E.STATE, "probe": p, "endpoint": p.split("/")[0],
                            "backend": p.split("/")[1], "state": "OK", "previous": "CONNECTING"})
        ts = t0 + 0.2
        second = int(ts)
        while written < limit:
            for b in BACKENDS:
                for e in ENDPOINTS:
                    next_id[e] += 1
                    written += put({"ts": round(ts, 4), "event": E.WRITE, "probe": "%s/%s" % (e, b), "endpoint": e,
                                    "id": next_id[e], "value": value_of(next_id[e]), "address": db.host})
                ts += step
            if int(ts) != second:
                second = int(ts)
                written += put({"ts": float(second), "event": E.TICK, "probes": {
                    p: {"ops": int(1 / INTERVAL), "errors": 0, "latency_ms": 2.5, "in_flight_s": None}
                    for p in probes}})
        put({"ts": ts, "event": E.RUN_STOP})
        for e in ENDPOINTS:
            put({"ts": ts + 1, "event": E.VERIFY, "endpoint": e, "ok": True, "acknowledged": next_id[e], "lost": 0,
                 "changed": 0, "in_doubt_committed": 0, "in_doubt_not_committed": 0, "lost_ids": [],
                 "error": None, "server": "bench", "warnings": []})
        put({"ts": ts + 1.1, "event": E.SUMMARY, "probes": {}})
    return dict(next_id)


def fill_tables(db: BenchDb, tables: Dict[str, str], counts: Dict[str, int]) -> None:
    """Rows 1..N with the record's values, in one statement per table (SEQUENCE engine)."""
    conn = root_connect(db.host, db.port, database=db.database)  # seq_1_to_N lives in the current database
    try:
        with conn.cursor() as cur:
            for endpoint, table in tables.items():
                cur.execute("TRUNCATE TABLE `%s`.`%s`" % (db.database, table))
                if counts.get(endpoint):
                    cur.execute("INSERT INTO `%s`.`%s` (id, value) SELECT seq, (seq * 7919) %% 32768 FROM seq_1_to_%d"
                                % (db.database, table, counts[endpoint]))
    finally:
        conn.close()


def measure(argv: Sequence[str], env: Dict[str, str]) -> Tuple[float, float, int, str]:
    """(peak RSS in MB, wall seconds, exit code, last stdout line) of one child process."""
    t0 = time.monotonic()
    proc = subprocess.Popen(list(argv), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    out = proc.stdout.read() if proc.stdout is not None else b""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8
    seconds = time.monotonic() - t0
    lines = out.decode("utf-8", "replace").strip().splitlines()
    return usage.ru_maxrss / 1024.0, seconds, proc.returncode, (lines[-1] if lines else "")


def figure(sizes: Sequence[float] = (20.0, 200.0), keep: Optional[str] = None) -> Figure:
    fig = Figure(8, "report / verify on large records: peak RSS and time")
    tables = {e: "bigrec_%s" % e for e in ENDPOINTS}
    db = setup_database(list(tables.values()))
    work = keep or tempfile.mkdtemp(prefix="fiswatch-bench-record-")
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", AWS_EC2_METADATA_DISABLED="true")
    for e in ENDPOINTS:
        env["FISWATCH_PASSWORD_%s" % e.upper()] = db.password.reveal()
    fiswatch = [sys.executable, "-m", "fiswatch"]
    rows: List[Dict[str, Any]] = []
    try:
        for size in (0.01,) + tuple(sizes):  # 10 kB: the baseline (interpreter and imports)
            path = os.path.join(work, "record-%gMB.jsonl" % size)
            counts = write_record(path, size, db, tables)
            fill_tables(db, tables, counts)
            real = os.path.getsize(path) / 1e6
            row: Dict[str, Any] = {"size_mb": round(real, 1), "writes": sum(counts.values())}
            for command in ("report", "verify"):
                rss, seconds, code, last = measure(fiswatch + [command, path], env)
                if code != 0:
                    raise RuntimeError("%s %s exited %d: %s" % (command, path, code, last))
                row[command] = {"peak_rss_mb": round(rss, 1), "seconds": round(seconds, 2),
                                "seconds_per_gb": round(seconds / (real / 1000.0), 1) if real >= 1 else None,
                                "last_line": last}
            rows.append(row)
    finally:
        drop_user(db)
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
    base, big = rows[0], rows[-1]
    for row in rows[1:]:
        for command in ("report", "verify"):
            fig.add("%s peak RSS, %.0f MB record" % (command, row["size_mb"]), row[command]["peak_rss_mb"], "MB",
                    TARGET_MB, "<=", "%d acknowledged writes; baseline %.0f MB (a 10 kB record)"
                    % (row["writes"], base[command]["peak_rss_mb"]))
    for command in ("report", "verify"):
        fig.add("%s time per GB" % command, big[command]["seconds_per_gb"], "s/GB",
                note="%.0f MB in %.1f s" % (big["size_mb"], big[command]["seconds"]))
    if len(rows) > 2:
        small = rows[1]
        million = (big["writes"] - small["writes"]) / 1e6
        for command in ("report", "verify"):
            slope = (big[command]["peak_rss_mb"] - small[command]["peak_rss_mb"]) / million if million else None
            fig.add("%s MB per million acknowledged writes" % command, slope, "MB",
                    note="peak RSS growth from the %.0f MB to the %.0f MB record" % (small["size_mb"], big["size_mb"]))
    fig.details = {"records": rows}
    return fig


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fiswatch.bench.record_memory", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="20,200", metavar="MB,MB", help="record sizes in MB (default: %(default)s)")
    p.add_argument("--keep", metavar="DIR", help="write the records into DIR and keep them")
    args = p.parse_args(argv)
    try:
        sizes = [float(x) for x in args.sizes.split(",") if x.strip()]
    except ValueError:
        p.error("--sizes takes numbers of MB, e.g. 20,200")
    if not sizes or any(s <= 0 for s in sizes):
        p.error("--sizes takes numbers of MB above 0, e.g. 20,200")
    fig = figure(sizes, args.keep)
    for m in fig.metrics:
        print("%-45s %10s %-4s %s" % (m.name, "-" if m.value is None else "%.4g" % m.value, m.unit,
                                      "target %s %g: %s" % (m.op, m.target, "met" if m.met else "MISSED")  # type: ignore[str-format]
                                      if m.op else m.note))
    print(json.dumps(fig.as_dict(), indent=1))
    return 1 if fig.error else 0


if __name__ == "__main__":
    sys.exit(main())
