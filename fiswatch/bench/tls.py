"""TLS figure: what the handshake adds to each client's recovery, and what a reconnect costs in CPU.

Gaps: every client runs twice side by side through the same lab failovers (fast profile, Aurora and
RDS interleaved, `repeats` of each): once with `ssl_mode=DISABLED` (plaintext) and once with
`ssl_mode=VERIFY_IDENTITY` (TLS, the lab CA, the endpoint's name). Per failover and probe: the longest
gap between acknowledged writes overlapping the outage. Reported per target and client: the median
TLS gap, the median plaintext gap, and the median of the paired differences (same failover).

CPU: `connects` connections per client and mode, one after the other, to the Aurora writer's proxy:
the client thread's CPU time per connect (time.thread_time, the TLS context and handshake included),
the wall time, and the lab daemon's CPU per connect (its proxies terminate TLS: the server side; its
idle rate, measured just before, subtracted; /proc ticks are 10 ms, so take it as a rough figure).

Run alone: `python -m fiswatch.bench.tls [--repeats N] [--connects N]` (starts and removes its own lab),
`run(quick)` is ready to become a figure of `python -m fiswatch.bench` (quick: one failover of each, 5 connects).
"""
import argparse
import json
import os
import sys
import threading
import time
from typing import Any, Dict, List, Optional

from fiswatch import events as E
from fiswatch.bench.common import Figure, median
from fiswatch.bench.own_lab import own_lab
from fiswatch.bench.recovery_figure import longest_gap, spread

CLIENTS = ("pymysql", "mysql-connector:read_timeout=1", "aws-wrapper")  # the wrapper where it runs (Aurora)
MODES = ("DISABLED", "VERIFY_IDENTITY")
SETTLE, RECOVER = 3.0, 4.0


def _spec(client: str, mode: str) -> str:
    return "%s%sssl_mode=%s" % (client, "," if ":" in client else ":", mode)


def _clients() -> List[str]:
    from fiswatch.bench.wrapper import wrapper_available

    return [c for c in CLIENTS if c != "aws-wrapper" or wrapper_available()]


def gap_rows(lab_dir: str, info: Any, repeats: int, clients: List[str]) -> List[Dict[str, Any]]:
    from fiswatch.backends.registry import parse_backend_spec
    from fiswatch.engine.runner import Output, RunOptions, Runner
    from fiswatch.lab.api import failover

    specs = []
    for client in clients:
        for mode in MODES:
            spec = parse_backend_spec(_spec(client, mode))
            if client == "aws-wrapper":
                spec = parse_backend_spec("aurora/" + _spec(client, mode))
            specs.append(spec)
    writes: Dict[str, List[float]] = {}
    lock = threading.Lock()

    def sink(view: Any, events: List[Any]) -> None:
        with lock:
            for e in events:
                if e.event == E.WRITE:
                    writes.setdefault(str(e.get("probe")), []).append(e.ts)

    runner = Runner(list(info.endpoints), specs, RunOptions(interval=0.05, stall_after=2.0,
                                                            nameserver=tuple(info.nameserver)),
                    outputs=[Output(sink, "bench")])
    runner.start()
    rows = []
    try:
        for i in range(repeats * 2):
            target = ("aurora", "rds")[i % 2]
            time.sleep(SETTLE)
            steps: List[Any] = []
            failover(lab_dir, target, emit=steps.append, profile="fast")
            time.sleep(RECOVER)
            start = next(e.get("outage_start") for e in steps if e.get("step") == "start")
            end = next(e.get("outage_end") for e in steps if e.get("step") == "done")
            row: Dict[str, Any] = {"target": target, "outage_s": round(end - start, 3), "gaps_s": {}}
            with lock:
                for probe, times in writes.items():
                    if probe.startswith(target + "/"):
                        gap = longest_gap(times, start, end)
                        row["gaps_s"][probe.split("/", 1)[1]] = None if gap is None else round(gap, 3)
            rows.append(row)
    finally:
        runner.stop()
    return rows


def _daemon_cpu(pid: int) -> Optional[float]:
    try:
        with open("/proc/%d/stat" % pid) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _idle_rate(pid: int, seconds: float = 1.0) -> Optional[float]:
    before = _daemon_cpu(pid)
    time.sleep(seconds)
    after = _daemon_cpu(pid)
    return None if before is None or after is None else (after - before) / seconds


def cpu_rows(info: Any, connects: int, clients: List[str]) -> List[Dict[str, Any]]:
    from fiswatch.backends.registry import make_backend, parse_backend_spec

    ep = info.endpoint("aurora")
    writer = info.instance("aurora", "writer")
    password = ep.password.reveal() if ep.password is not None else ""
    rows = []
    for client in clients:
        for mode in MODES:
            backend = make_backend(parse_backend_spec(_spec(client, mode))).for_endpoint(ep)
            cpu, wall = [], []
            idle = _idle_rate(info.pid)  # the daemon's own background CPU (heartbeat, DNS) per second
            daemon_before, began = _daemon_cpu(info.pid), time.monotonic()
            for _ in range(connects):
                t0, c0 = time.monotonic(), time.thread_time()
                conn = backend.connect(writer.address, writer.port, ep.user, password, ep.database,
                                       server_hostname=ep.host)
                c1, t1 = time.thread_time(), time.monotonic()
                version = (backend.tls_facts(conn) or ("?", ""))[0]
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
                cpu.append(c1 - c0)
                wall.append(t1 - t0)
            daemon_after, spent = _daemon_cpu(info.pid), time.monotonic() - began
            daemon = None if daemon_before is None or daemon_after is None or idle is None \
                else max(0.0, daemon_after - daemon_before - idle * spent) / connects
            rows.append({"client": client, "mode": mode, "tls": version, "connects": connects,
                         "client_cpu_ms": round(1000 * (median(cpu) or 0.0), 2),
                         "wall_ms": round(1000 * (median(wall) or 0.0), 2),
                         "lab_cpu_ms": None if daemon is None else round(1000 * daemon, 2)})
    return rows


def tls_figure(lab_dir: str, info: Any, repeats: int = 5, connects: int = 30) -> Figure:
    fig = Figure(8, "TLS: each client's failover gap with and without TLS, and CPU per reconnect")
    clients = _clients()
    cpu = cpu_rows(info, connects, clients)
    for row in cpu:
        fig.add("%s %s: client CPU per connect" % (row["client"], row["mode"]), row["client_cpu_ms"] / 1000, "s",
                note="median of %d connects (%s); wall %.1f ms; lab proxy CPU %s ms per connect"
                % (row["connects"], row["tls"], row["wall_ms"], row["lab_cpu_ms"]))
    rows = gap_rows(lab_dir, info, repeats, clients)
    for target in ("aurora", "rds"):
        mine = [r for r in rows if r["target"] == target]
        for client in clients:
            if client == "aws-wrapper" and target != "aurora":
                continue
            tls = [r["gaps_s"].get(_spec(client, "VERIFY_IDENTITY")) for r in mine]
            plain = [r["gaps_s"].get(_spec(client, "DISABLED")) for r in mine]
            diffs = [None if a is None or b is None else a - b for a, b in zip(tls, plain)]
            seen = len([g for g in tls if g is not None])
            fig.add("%s: %s gap with TLS" % (target, client), median([g for g in tls if g is not None]), "s",
                    note="median of %d of %d fast failovers (the others: no write after the outage within the "
                         "window); spread %s" % (seen, len(mine), spread(tls)))
            fig.add("%s: %s gap without TLS" % (target, client), median([g for g in plain if g is not None]), "s",
                    note="same failovers; spread %s" % spread(plain))
            fig.add("%s: %s gap, TLS - plaintext" % (target, client), median([d for d in diffs if d is not None]),
                    "s", note="paired per failover; spread %s" % spread(diffs))
    fig.details = {"failovers": rows, "cpu": cpu, "clients": clients}
    return fig


def run(quick: bool, repeats: int = 5, connects: int = 30) -> Figure:
    """Figure 8 on a lab of its own (started and removed here); --quick: one failover each, 5 connects."""
    if quick:
        repeats, connects = 1, 5
    with own_lab("tls") as (lab_dir, info):
        return tls_figure(lab_dir, info, repeats, connects)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fiswatch.bench.tls", description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="failovers of each target (default: %(default)s)")
    p.add_argument("--connects", type=int, default=30, help="connects per client and mode (default: %(default)s)")
    p.add_argument("--out", help="write the figure as JSON here too")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.connects < 1:
        p.error("--repeats and --connects must be at least 1")
    started = time.monotonic()
    fig = run(False, args.repeats, args.connects)
    fig.seconds = time.monotonic() - started
    text = json.dumps(fig.as_dict(), indent=1)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    print(text)
    return 1 if fig.error else 0


if __name__ == "__main__":
    sys.exit(main())
