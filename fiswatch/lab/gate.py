"""`fiswatch lab exec` as a CI gate: a failover schedule, expectations, and the program's verdict from the wire.

    fiswatch lab exec --failover aurora@10 --failover rds@40 --expect max-gap=15 --expect lost=0 \\
        --expect recovered --junit failover.xml -- ./my-service-smoke-test

--failover ENDPOINT@SECONDS   a failover of `aurora` or `rds`, SECONDS after COMMAND starts (--profile
                              fast | quick | realistic, as `fiswatch lab failover`). In order.
--stale-dns SECONDS           its Aurora failovers keep the cluster name on the old writer for SECONDS
                              after it rejoined read-only (the demoted-writer trap).
--expect [ENDPOINT:]KEY[=VALUE]
      max-gap=SECONDS   every failover's write gap of the program is at most SECONDS
      lost=N            at most N acknowledged inserts missing from the current writer after the run
      recovered         the program wrote again after every failover (not hung, not left on a
                        demoted writer); a failover of an endpoint it never wrote to is "not
                        measured", which fails it too
      ENDPOINT: limits it to one endpoint (aurora:max-gap=5).
With a schedule or expectations, a lab is started when none runs (and stopped after).

The verdict (lab/wire/verdict.py; judged by lab/gate_judge.py, JUnit by lab/gate_junit.py) is always printed on stderr when COMMAND ends; --json FILE
writes it as one object, --junit FILE as JUnit XML (one testcase per expectation and per
failover), --record FILE as a record `fiswatch report` reads.

Exit codes: COMMAND's own when every expectation is met; EXIT_EXPECTATIONS (3) when one is not,
even if COMMAND exited 0 (one `expectation failed` line each on stderr); 2 for a bad --expect /
--failover, before anything starts; otherwise as `lab exec` (125 could not run, 126, 127, 128+N).
"""
import argparse
import json
import os
import signal
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from fiswatch.lab.gate_judge import Expectation, Scheduled, judge
from fiswatch.lab.gate_junit import junit_xml

EXIT_EXPECTATIONS = 3
KEYS = ("max-gap", "lost", "recovered")
ENDPOINTS = ("aurora", "rds")
PROFILES = ("fast", "quick", "realistic")


class GateUsage(ValueError):
    """A bad --expect or --failover: one line, exit 2."""


def add_gate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--failover", action="append", default=[], metavar="ENDPOINT@SECONDS",
                   help="fail ENDPOINT (aurora or rds) over SECONDS after COMMAND starts; repeatable")
    p.add_argument("--crash", action="append", default=[], metavar="ENDPOINT@SECONDS",
                   help="crash ENDPOINT's writer SECONDS after COMMAND starts: it restarts in place; repeatable")
    p.add_argument("--patch", action="append", default=[], metavar="aurora@SECONDS",
                   help="zero-downtime patching of Aurora's writer SECONDS after COMMAND starts (needs lab up --proxy)")
    p.add_argument("--switchover", action="append", default=[], metavar="aurora@SECONDS",
                   help="a Blue/Green switchover (aurora and rds together) SECONDS after COMMAND starts (lab up --blue-green)")
    p.add_argument("--profile", default="fast", choices=PROFILES,
                   help="the failovers' timing profile, as `fiswatch lab failover` (default fast)")
    p.add_argument("--stale-dns", metavar="SECONDS", default=None, dest="gate_stale_dns",
                   help="with --failover aurora@SECONDS: the demoted-writer trap: the cluster name keeps naming the "
                        "old writer for SECONDS after it rejoined read-only (as `lab failover --stale-dns`)")
    p.add_argument("--expect", action="append", default=[], metavar="[ENDPOINT:]KEY[=VALUE]",
                   help="max-gap=SECONDS, lost=N, recovered; exit %d when COMMAND's measured behaviour misses "
                        "one" % EXIT_EXPECTATIONS)
    p.add_argument("--junit", metavar="FILE", help="write the expectations and failovers as JUnit XML")
    p.add_argument("--json", metavar="FILE", dest="json_file", help="write the verdict as one JSON object")
    p.add_argument("--record", metavar="FILE", help="write a record for `fiswatch report`")


def parse_expectation(text: str) -> Expectation:
    """One --expect value, or GateUsage.

    >>> parse_expectation("aurora:max-gap=5")
    Expectation(text='aurora:max-gap=5', endpoint='aurora', key='max-gap', value=5.0)
    >>> parse_expectation("recovered").key
    'recovered'
    >>> parse_expectation("max-gap=soon")
    Traceback (most recent call last):
    ...
    fiswatch.lab.gate.GateUsage: --expect max-gap=soon: max-gap wants a number of seconds >= 0, e.g. max-gap=15
    """
    body, endpoint = text.strip(), None
    if ":" in body:
        endpoint, body = body.split(":", 1)
        if endpoint not in ENDPOINTS:
            raise GateUsage("--expect %s: unknown endpoint %r: use aurora or rds" % (text, endpoint))
    key, eq, raw = body.partition("=")
    if key not in KEYS:
        raise GateUsage("--expect %s: unknown expectation %r: use max-gap=SECONDS, lost=N or recovered" % (text, key))
    if key == "recovered":
        if eq:
            raise GateUsage("--expect %s: recovered takes no value" % text)
        return Expectation(text, endpoint, key, None)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if key == "max-gap" and not (value >= 0 and value == value and value != float("inf")):
        raise GateUsage("--expect %s: max-gap wants a number of seconds >= 0, e.g. max-gap=15" % text)
    if key == "lost" and not (raw.isdigit()):
        raise GateUsage("--expect %s: lost wants a whole number >= 0, e.g. lost=0" % text)
    return Expectation(text, endpoint, key, value)


def parse_failover(text: str, kind: str = "failover") -> Scheduled:
    """One --failover value, or GateUsage.

    >>> parse_failover("rds@40")
    Scheduled(target='rds', at=40.0, kind='failover')
    >>> parse_failover("aurora@20", "patch").kind
    'patch'
    """
    target, at, raw = text.partition("@")
    if kind == "patch" and target != "aurora":
        raise GateUsage("--patch %s: say aurora@SECONDS (zero-downtime patching is Aurora's)" % text)
    if target not in ENDPOINTS or not at:
        raise GateUsage("--%s %s: say ENDPOINT@SECONDS with ENDPOINT aurora or rds, e.g. aurora@10" % (kind, text))
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < 86400:
        raise GateUsage("--%s %s: SECONDS after the program starts, a number 0..86399" % (kind, text))
    return Scheduled(target, seconds, kind)


def wanted(args: argparse.Namespace) -> bool:
    return any(getattr(args, name, None) for name in ("failover", "expect", "crash", "patch", "switchover"))


def parse_stale_dns(raw: Optional[str], schedule: Sequence[Scheduled]) -> Optional[float]:
    """--stale-dns SECONDS of the gate (None without it), or GateUsage.

    >>> parse_stale_dns("8", [Scheduled("aurora", 10.0)])
    8.0
    >>> parse_stale_dns("8", [Scheduled("rds", 10.0)])
    Traceback (most recent call last):
    ...
    fiswatch.lab.gate.GateUsage: --stale-dns goes with an Aurora failover: add --failover aurora@SECONDS
    """
    if raw is None:
        return None
    from fiswatch.lab.layout import LayoutError, check_stale_dns

    try:
        seconds = check_stale_dns(raw)
    except (LayoutError, ValueError) as exc:
        raise GateUsage(str(exc))
    if not any(s.target == "aurora" for s in schedule):
        raise GateUsage("--stale-dns goes with an Aurora failover: add --failover aurora@SECONDS")
    return seconds


def check_args(args: argparse.Namespace) -> Tuple[List[Expectation], List[Scheduled]]:
    expectations = [parse_expectation(e) for e in args.expect]
    schedule = sorted([parse_failover(f) for f in args.failover] + [
        parse_failover(c, kind) for kind in ("crash", "patch", "switchover") for c in getattr(args, kind, [])], key=lambda s: s.at)
    parse_stale_dns(getattr(args, "gate_stale_dns", None), schedule)
    for path in (args.junit, args.json_file, args.record):
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise GateUsage("cannot write %s: its directory does not exist" % path)
    return expectations, schedule


# --- the run -------------------------------------------------------------------------------
class Failovers:
    """Runs the schedule in a thread of its own, relative to COMMAND's start; collects `lab` events."""

    def __init__(self, lab_dir: str, schedule: Sequence[Scheduled], profile: str,
                 stale_dns: Optional[float] = None) -> None:
        self.lab_dir, self.schedule, self.profile = lab_dir, list(schedule), profile
        self.stale_dns = stale_dns  # Aurora failovers only; None: the lab's own default
        self.events: List[Dict[str, Any]] = []
        self.done: List[Tuple[Scheduled, str]] = []  # (failover, "" or why it failed / did not run)
        self.stop = threading.Event()
        self.thread: Optional[threading.Thread] = None

    def start(self, t0: float) -> None:
        if self.schedule:
            self.thread = threading.Thread(target=self._run, args=(t0,), name="lab-exec-failovers", daemon=True)
            self.thread.start()

    def finish(self) -> None:
        """COMMAND ended: a failover under way completes (or rolls back); the rest do not run."""
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
        ran = {id(s) for s, _ in self.done}
        for s in self.schedule:
            if id(s) not in ran:
                self.done.append((s, "not run: the program ended first"))

    def _run(self, t0: float) -> None:
        from fiswatch.lab.api import LabError, failover
        from fiswatch.lab.crash import CrashError, run_crash
        from fiswatch.lab.switchover_cli import exec_switchover

        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD, signal.SIGINT, signal.SIGTERM})
        for s in self.schedule:
            if self.stop.wait(max(0.0, t0 + s.at - time.time())):
                return
            try:
                if s.kind == "crash":
                    run_crash(self.lab_dir, s.target, sink=lambda ev: self.events.append(ev.as_dict()))
                elif s.kind == "patch":
                    from fiswatch.lab.patch_run import run_patch_outage
                    run_patch_outage(self.lab_dir, s.target, sink=lambda ev: self.events.append(ev.as_dict()))
                elif s.kind == "switchover":
                    exec_switchover(self.lab_dir, lambda ev: self.events.append(ev.as_dict()))
                else:
                    failover(self.lab_dir, s.target, emit=lambda ev: self.events.append(ev.as_dict()),
                             profile=self.profile, stale_dns=self.stale_dns if s.target == "aurora" else None)
                self.done.append((s, ""))
            except (LabError, ValueError, CrashError) as exc:  # ValueError: signal handling outside the main thread
                self.done.append((s, "failed: %s" % exc))


def run_gate(args: argparse.Namespace, lab_dir: str, argv: List[str], say: Any) -> int:
    """Run COMMAND under the schedule and judge it; see the module doc for the exit codes."""
    from fiswatch.lab import api
    from fiswatch.lab.exec import ExecError, exec_in_lab

    try:
        expectations, schedule = check_args(args)
    except GateUsage as exc:
        say(str(exc))
        return 2
    started_lab = False
    if wanted(args):
        try:
            api.lab_status(lab_dir)
        except api.LabNotRunning:
            say("no lab runs in %s: starting one (stopped again at the end)" % lab_dir)
            try:
                api.lab_up(lab_dir, rds_proxy=any(s.kind == "patch" for s in schedule))  # a patch needs the proxy
            except api.LabError as exc:
                say("cannot start a lab: %s" % exc)
                return 125
            started_lab = True
        except api.LabError as exc:
            say(str(exc))
            return 125
        if not started_lab and any(s.kind == "patch" for s in schedule):
            refused = patch_refusal(lab_dir)
            if refused:
                say("--patch: %s" % refused)
                return 2
    _preload(bool(schedule))
    failovers = Failovers(lab_dir, schedule, args.profile, parse_stale_dns(getattr(args, "gate_stale_dns", None),
                                                                           schedule))
    t0 = time.time()
    try:
        try:
            code = exec_in_lab(lab_dir, argv, aws=bool(args.aws), before_wait=lambda: failovers.start(time.time()))
        except ExecError as exc:
            say(str(exc))
            failovers.finish()
            return exc.code
        failovers.finish()
        end = time.time()
        results, lines, doc = verdict_of(lab_dir, argv, expectations, failovers, t0, end, args)
        asked = wanted(args) or any(getattr(args, k, None) for k in ("record", "junit", "json"))
        silent = not asked and any(line.startswith("  not measured: no connection") for line in lines)
        for line in lines if not silent else ():  # a program that never reached the lab: nothing to say
            say(line)
        failed = [(name, msg) for name, ok, msg in results if not ok]
        for name, msg in failed:
            say("expectation failed: %s: %s" % (name, msg))
        return EXIT_EXPECTATIONS if failed else code
    finally:
        if started_lab:
            try:
                api.lab_down(lab_dir)
            except api.LabError as exc:
                say("could not stop the lab it started: %s" % exc)


def patch_refusal(lab_dir: str) -> str:
    """Why the lab at `lab_dir` cannot take a scheduled patch (no RDS Proxy), '' when it can."""
    from fiswatch.lab.control import ControlError
    from fiswatch.lab.crash import CrashError
    from fiswatch.lab.patch_run import check_patchable

    try:
        check_patchable(lab_dir)
    except CrashError as exc:
        return str(exc)
    except ControlError:
        return ""  # the daemon did not answer: the scheduled patch itself will say so in the verdict
    return ""


def _preload(failovers: bool) -> None:
    """Import now what the verdict needs: inside the namespace (without root, a user namespace) the
    interpreter's own library may not be readable any more."""
    import xml.sax.saxutils  # noqa: F401

    import fiswatch.lab.control  # noqa: F401
    import fiswatch.lab.mariadb  # noqa: F401
    import fiswatch.lab.wire.lost  # noqa: F401
    import fiswatch.lab.wire.verdict  # noqa: F401
    import fiswatch.report.build  # noqa: F401
    import fiswatch.report.failover_table  # noqa: F401
    try:
        import pymysql  # noqa: F401
    except ImportError:
        pass
    if failovers:
        import fiswatch.lab.failover  # noqa: F401


def verdict_of(lab_dir: str, argv: List[str], expectations: Sequence[Expectation], failovers: Failovers,
               t0: float, end: float, args: argparse.Namespace) -> Tuple[List[Tuple[str, bool, str]], List[str], Dict]:
    from fiswatch.lab.control import ControlError, request
    from fiswatch.lab.layout import CONTROL_SOCKET
    from fiswatch.lab.wire import lost as lost_check
    from fiswatch.lab.wire import verdict as V
    from fiswatch.report.build import build_report

    name = os.path.basename(argv[0])
    path = os.path.join(os.path.abspath(lab_dir), CONTROL_SOCKET)
    deadline = time.time() + 3.0  # the proxies see the program's last connections close
    while True:
        try:
            snapshot = request(path, "wire", timeout=30)
        except ControlError as exc:
            snapshot = {"clients": [], "error": str(exc)}
            break
        clients = V.program_clients(snapshot, os.getpid())
        if all(c.get("open", 0) <= 0 for c in clients) or time.time() > deadline:
            break
        time.sleep(0.1)
    clients = V.program_clients(snapshot, os.getpid())
    merged = V.merge(clients)
    events = V.program_events(name, merged, failovers.events, t0, end)
    report = build_report(events)
    inserts: Dict[str, List[List[int]]] = {}
    unverifiable: Dict[str, int] = {}
    for c in clients:
        for table, ranges in (c.get("inserts") or {}).items():
            inserts.setdefault(table, []).extend(ranges)
        for why, n in (c.get("unverifiable") or {}).items():
            unverifiable[why] = unverifiable.get(why, 0) + n
    lost = lost_check.check(lab_dir, inserts, unverifiable)
    lines = ["verdict of %s (measured on the wire by the lab's proxies):" % name]
    if snapshot.get("error"):
        lines.append("  not measured: %s" % snapshot["error"])
    elif not clients:
        lines.append("  not measured: no connection of %s went through the lab's proxies" % name)
    unmeasured: Dict[str, int] = {}
    for c in clients:
        for why, n in (c.get("unmeasured") or {}).items():
            unmeasured[why] = unmeasured.get(why, 0) + n
    for why, n in sorted(unmeasured.items()):
        lines.append("  %d connection(s) not measured: %s" % (n, why))
    refused = {e: int(m.get("refused") or 0) for e, m in merged.items()}
    lines.extend("  " + line for line in V.describe(report, lost, refused))
    results = judge(expectations, report, lost, failovers.done)
    doc = {"command": argv, "start": t0, "end": end, "clients": len(clients),
           "endpoints": {p.endpoint: {"acknowledged": p.acknowledged, "errors": p.errors,
                                      "refused": refused.get(p.endpoint, 0),
                                      "failovers": [{"number": o.number, "target": o.failover.target,
                                                     "gap": o.gap.duration if o.gap else None,
                                                     "open": bool(o.gap and o.gap.open)} for o in p.outages]}
                         for p in report.probes},
           "lost": lost, "unmeasured": unmeasured,
           "expectations": [{"name": n, "passed": ok, "message": m} for n, ok, m in results],
           "passed": all(ok for _, ok, _ in results)}
    _write(args.json_file, json.dumps(doc, sort_keys=True) + "\n")
    _write(args.junit, junit_xml(results, " ".join(argv), end - t0))
    _write(args.record, "".join(json.dumps(e, sort_keys=True) + "\n" for e in events))
    return results, lines, doc


def _write(path: Optional[str], text: str) -> None:
    if not path:
        return
    try:
        with open(path, "w") as fh:
            fh.write(text)
    except OSError as exc:
        sys.stderr.write("fiswatch lab exec: cannot write %s: %s\n" % (path, exc.strerror or exc))
