"""`fiswatch demo`: the workshop's lesson on the local lab, in one command.

Starts a lab when none runs, watches both endpoints with both plain drivers (and the
Aurora cluster with the AWS Advanced Python Wrapper, where it runs: Python >= 3.10 and
the `aws-wrapper` extra), fails the Aurora cluster over after ~10 s and the RDS instance
later (or on the keys f and r), records the run into the lab dir, and on quit stops the
lab it started (or says how to).
"""
import argparse
import functools
import os
import threading
import time
from dataclasses import replace
from typing import Any, Callable, Dict, List, Optional, Tuple

from fiswatch import events as E
from fiswatch.exits import EXIT_FAIL, EXIT_OK, EXIT_USAGE  # noqa: F401 (EXIT_OK: callers)
from fiswatch.output.streams import say as say_line


def add_parser(sub) -> None:
    from fiswatch.config.checks import HOUR, port_arg, seconds_arg
    from fiswatch.config.options import RUN_EPILOG, add_output_args, add_probe_args
    from fiswatch.lab.cli import stale_dns_arg

    p = sub.add_parser(
        "demo", help="run the whole lesson on a local lab (no AWS account needed)",
        epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Start a local lab (MariaDB servers, DNS, fault proxies) if none runs, watch both endpoints "
                    "with both backends, and fail the Aurora cluster and then the RDS instance over, so the "
                    "mysql-connector probes (no read timeout) lock up while the PyMySQL probes recover at the DNS "
                    "change; on Python >= 3.10 with the aws-wrapper extra a third Aurora column, the AWS Advanced "
                    "Python Wrapper, recovers at the promotion, before DNS changes. --backend replaces the list.")
    p.add_argument("--dir", metavar="DIR", help="lab directory (default: the one `fiswatch lab up` uses)")
    p.add_argument("--base", default="127.0.10", metavar="A.B.C",
                   help="loopback prefix for a lab this demo starts (default: %(default)s)")
    p.add_argument("--dns-port", type=port_arg, default=5300, metavar="PORT",
                   help="DNS port for a lab this demo starts (default: %(default)s)")
    p.add_argument("--aurora-after", type=seconds_arg(0.0, HOUR), default=10.0, metavar="SECONDS",
                   help="fail the Aurora cluster over this long after the start (default: %(default)s)")
    p.add_argument("--rds-after", type=seconds_arg(0.0, HOUR), default=45.0, metavar="SECONDS",
                   help="reboot the RDS instance with failover this long after the start (default: %(default)s)")
    p.add_argument("--no-failover", action="store_true", help="no automatic failovers: use the keys f and r")
    p.add_argument("--crash", type=seconds_arg(0.0, HOUR), default=None, metavar="SECONDS",
                   help="also crash Aurora's writer this long after the start: it restarts in place, no failover, no "
                        "DNS change (`fiswatch lab crash aurora`; key c)")
    p.add_argument("--patch", type=seconds_arg(0.0, HOUR), default=None, metavar="SECONDS",
                   help="with --proxy: also patch Aurora's writer (zero-downtime patching) this long after the start: "
                        "the RDS Proxy keeps client sessions (`fiswatch lab patch aurora`; key z)")
    p.add_argument("--switchover", type=seconds_arg(0.0, HOUR), default=None, metavar="SECONDS",
                   help="a Blue/Green switchover this long after the start instead of the failovers (the lab gets a "
                        "green environment, `lab up --blue-green`; the wrapper runs with its bg plugin; key s)")
    p.add_argument("--realistic", action="store_true",
                   help="realistic timings: DNS flips after ~15 s and flaps for a while (default: fast)")
    p.add_argument("--stale-dns", type=stale_dns_arg(), default=None, metavar="SECONDS",
                   help="the demoted-writer trap: Aurora's cluster name keeps naming the old writer for SECONDS "
                        "after it rejoined read-only, so clients that reconnect by name get 1290 on writes "
                        "(default: the lab's `lab up --stale-dns`, else a clean flip)")
    p.add_argument("--readers", type=int, choices=(1, 2, 3), default=None, metavar="N",
                   help="Aurora readers of a lab this demo starts, 1..3 (default: 2, 1 with --switchover); with 2 "
                        "or more a read column follows a reader the failover does not promote: reads go on, "
                        "writes stop")
    p.add_argument("--reads", action=argparse.BooleanOptionalAction, default=None,
                   help="a read column (PyMySQL reading a surviving Aurora reader, else aurora-ro) beside the "
                        "writes (default: when the lab has 2+ Aurora readers; --no-reads: never)")
    p.add_argument("--proxy", action="store_true",
                   help="start the lab with its RDS Proxy: every backend runs twice, by the cluster name (aurora) "
                        "and via the proxy (aurora-proxy), through the same failover (docs/rdsproxy.md)")
    p.add_argument("--keep-lab", action="store_true", help="leave a lab this demo started running on quit")
    p.add_argument("--exec", metavar="COMMAND", dest="exec_command",
                   help="also run your own program in the lab (`fiswatch lab exec`) through the same failovers; "
                        "its output goes to a log next to the record and into the event log")
    p.add_argument("--exec-aws", action="store_true",
                   help="with --exec: run it with `lab exec --aws` (the workshop's secrets and CloudWatch, locally)")
    add_probe_args(p)
    add_output_args(p)
    p.set_defaults(handler=run_demo, endpoint=[], table="test", nameserver=None)


def demo_backends() -> Tuple[List[str], str]:
    """The demo's probes: both plain drivers everywhere, and the AWS Advanced Python Wrapper
    on the Aurora cluster when it can run here; plus why it is left out when it cannot.

    Not on the RDS instance: a Multi-AZ instance has no topology for the wrapper to read,
    so it can only follow DNS like PyMySQL (docs/lesson.md has the numbers), and a sixth
    column would cost every column its rows on an 80x24 terminal.
    """
    from fiswatch.backends.aws_wrapper import AwsWrapperBackend
    from fiswatch.backends.registry import DEFAULT_BACKENDS

    info = AwsWrapperBackend().info()
    if info.available:
        return list(DEFAULT_BACKENDS) + ["aurora/aws-wrapper"], ""
    return list(DEFAULT_BACKENDS), "the aws-wrapper column is left out: %s" % info.reason


class DemoHooks:
    """Failover jobs and keys for the watch loop: `keys` and `actions` (f, r) before the run,
    `start(runner)` once it runs (the scheduled failovers), `before_stop(runner)` at its end."""

    def __init__(self, lab_dir: str, profile: str, schedule: List[Tuple[float, str]], info=None,
                 notes: Tuple[str, ...] = (), stale_dns: Optional[float] = None, switchover: bool = False) -> None:
        self.lab_dir = lab_dir
        self.stale_dns = stale_dns  # Aurora failovers only; None: the lab's own default
        self.info = info
        self.profile = profile
        self.schedule = schedule
        self.notes = notes
        self._busy = threading.Lock()
        self._lock = threading.Lock()
        self._pending: set = set()  # targets whose failover runs or waits for the running one
        self._runner = None
        self._timers: List[threading.Timer] = []
        self._cancel = threading.Event()  # set on quit: a running failover finishes or rolls back at once
        self._threads: List[threading.Thread] = []
        self.keys: Tuple[Tuple[str, str], ...] = (("f", "failover aurora"), ("r", "failover rds"),
                                                  ("c", "crash aurora"), ("z", "patch aurora"))
        # f, r: a second one for a cluster whose failover runs is refused on screen (key_failover)
        self.actions: Dict[str, Callable[[], Optional[str]]] = {"f": lambda: self.key_failover("aurora"),
                                                                "r": lambda: self.key_failover("rds"),
                                                                "c": lambda: self.key_failover("crash"),
                                                                "z": lambda: self.key_failover("patch")}
        from fiswatch.lab.liveness import LabLiveness

        self.liveness = LabLiveness(lab_dir)  # the columns and a banner say when the lab's daemon is gone
        self.down, self.status_lines = self.liveness.down, self.liveness.status_lines
        self.phase = None
        if switchover:  # a Blue/Green switchover (lab/switchover.py): key s; its phase on a status line
            from fiswatch.lab.switchover_cli import SwitchoverPhase

            self.keys = (("s", "switchover"),) + self.keys  # first: the footer is cut at 80 columns
            self.actions["s"] = lambda: self.key_failover("switchover")
            phase = self.phase = SwitchoverPhase()
            self.status_lines = lambda: self.liveness.status_lines() + phase.lines()

    def start(self, runner) -> None:
        """The run started (its first line is out): the lab's liveness watch, the notes, then the
        failovers on schedule."""
        self._runner = runner
        self.liveness.start(runner.emit, runner.stop_event)  # says "lab daemon gone" if it dies
        for note in self.notes:
            runner.emit(E.info(note))
        for delay, target in self.schedule:
            timer = threading.Timer(delay, self.failover, args=(target,))
            timer.daemon = True
            timer.start()
            self._timers.append(timer)

    def key_failover(self, target: str) -> str:
        """The f / r key: refused (said on screen) while a failover of `target` runs or waits; one of the other
        cluster waits for the running one (said in the event log). Returns when it ended: the screen's footer
        then drops its `failover ...` (ui/screen.py shows what an action returns)."""
        with self._lock:
            if target in self._pending:
                refused = "%s already running: key ignored (one at a time per cluster)" % outage_label(target)
                if self._runner is not None:
                    self._runner.emit(E.info(refused))
                return refused
            waiting_for = sorted(self._pending)
        thread = self.failover(target)
        if waiting_for and self._runner is not None:
            self._runner.emit(E.info("failover %s queued: it starts when failover %s ends"
                                     % (target, waiting_for[0])))
        thread.join()
        return ""

    def failover(self, target: str) -> threading.Thread:
        """Run one failover in the background; a second one waits for the first."""
        with self._lock:
            self._pending.add(target)
        thread = threading.Thread(target=self._failover, args=(target,), name="failover " + target, daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def _failover(self, target: str) -> None:
        try:
            self._run_failover(target)
        finally:
            with self._lock:
                self._pending.discard(target)

    def _run_failover(self, target: str) -> None:
        from fiswatch.lab import api

        runner = self._runner
        if runner is None or runner.stop_event.is_set():
            return
        with self._busy:
            if runner.stop_event.is_set():
                return
            try:
                if target == "crash":  # the writer restarts in place (lab/crash.py); verified as aurora below
                    from fiswatch.lab.crash import crash_aurora

                    target = crash_aurora(self.lab_dir, runner.emit, self._cancel)
                elif target == "patch":  # zero-downtime patching through the RDS Proxy (lab/patch_run.py)
                    from fiswatch.lab.patch_run import patch_aurora

                    target = patch_aurora(self.lab_dir, runner.emit, self._cancel)
                elif target == "switchover":
                    from fiswatch.lab.switchover_cli import demo_switchover

                    target = demo_switchover(self.lab_dir, self.phase.wrap(runner.emit) if self.phase else runner.emit,
                                             self._cancel)
                else:
                    api.failover(self.lab_dir, target, emit=runner.emit, profile=self.profile, cancel=self._cancel,
                                 stale_dns=self.stale_dns if target == "aurora" else None)
            except Exception as exc:  # noqa: BLE001 - shown in the event log; the dashboard keeps running
                runner.emit(E.warning("%s failed: %s" % (outage_label(target), exc)))
                return
            self.verify(target)

    def verify(self, target: str) -> None:
        """Once the new writer is reachable: is every write acknowledged so far still there?"""
        from fiswatch.report.autoverify import verify_record

        runner = self._runner
        if self.info is None or runner is None or runner.stop_event.is_set():
            return
        try:
            _, events = verify_record(runner.record_path, self.info.endpoints, tuple(self.info.nameserver),
                                      only=[target])
        except Exception as exc:  # noqa: BLE001
            events = [E.warning("verify %s failed: %s" % (target, exc))]
        for event in events:
            runner.emit(event)

    def before_stop(self, runner) -> None:
        """Quitting mid-failover: the failover finishes or rolls back (lab/recovery.py) before the run ends."""
        for timer in self._timers:
            timer.cancel()
        self._cancel.set()
        running = [t for t in self._threads if t.is_alive()]
        if running:
            say("quitting during a failover: finishing or rolling it back ...")
        for thread in running:
            thread.join(120)


def run_demo(args: argparse.Namespace) -> int:
    from fiswatch.config.options import WatchOptions
    from fiswatch.exits import UsageError
    from fiswatch.lab import api
    from fiswatch.lab.exec_demo import parse_command
    from fiswatch.commands.watch import check_record_target, watch

    options = WatchOptions.from_args(args)
    check_record_target(options)
    lab_dir = args.dir or api.default_lab_dir()
    if args.patch is not None and not args.proxy:
        raise UsageError("--patch needs --proxy: zero-downtime patching keeps sessions only through the RDS Proxy")
    try:
        exec_argv = parse_command(args.exec_command, args.exec_aws)
    except ValueError as exc:
        raise UsageError(str(exc))
    started_here = False
    try:
        info = api.lab_status(lab_dir)
        say("using the lab already running in %s" % lab_dir)
        if args.switchover is not None and not any(i.cluster == "aurora-green" for i in info.instances):
            say("--switchover: this lab runs without a green environment; restart it with `fiswatch lab up --blue-green`")
            return EXIT_USAGE
        if args.proxy and not any(ep.name == "aurora-proxy" for ep in info.endpoints):
            say("--proxy: this lab runs without its RDS Proxy; restart it with `fiswatch lab up --proxy`")
            if args.patch is not None:
                return EXIT_USAGE
    except api.LabNotRunning:
        t0 = time.monotonic()
        try:
            info = api.lab_up(lab_dir, base=args.base, dns_port=args.dns_port, readers=demo_readers(args),
                              rds_proxy=args.proxy, blue_green=args.switchover is not None, on_start=lambda line: say(
                line or "starting a local lab in %s (MariaDB x%d, DNS, fault proxies) ..."
                % (lab_dir, 3 + demo_readers(args))))
        except api.LabUsageError as exc:
            say(str(exc))
            return EXIT_USAGE
        except api.LabError as exc:
            say(str(exc))
            return EXIT_FAIL
        started_here = True
        say("lab ready in %.1fs" % (time.monotonic() - t0))
    except api.LabError as exc:
        say(str(exc))
        return EXIT_FAIL
    if not options.record:  # the demo's run is always kept, in the lab dir
        runs = os.path.join(lab_dir, "runs")
        os.makedirs(runs, exist_ok=True)
        options = replace(options, record=os.path.join(runs, time.strftime("demo-%Y%m%d-%H%M%S.jsonl")))
    schedule = ([] if args.no_failover or args.switchover is not None else [(args.aurora_after, "aurora"),
                (args.rds_after, "rds")]) + ([(args.crash, "crash")] if args.crash is not None else []) + \
        ([(args.patch, "patch")] if args.patch is not None else []) + \
        ([(args.switchover, "switchover")] if args.switchover is not None else [])
    notes: Tuple[str, ...] = ()
    endpoints, options = _demo_reads(args, info, options)
    if not options.backend:
        backends, note = demo_backends()
        if args.switchover is not None:  # the wrapper as its docs recommend for Blue/Green (docs/lab.md)
            backends = [b + ":plugins=bg+failover_v2" if b.endswith("aws-wrapper") else b for b in backends]
        reading = [e.name for e in endpoints if e.reads and e.name not in [w.name for w in info.endpoints]]
        if reading:  # PyMySQL alone reads: one column more, and the writes' columns stay as they were
            from fiswatch.config.reads import scoped_backends

            backends = scoped_backends(backends, [e.name for e in info.endpoints]) + ["%s/pymysql" % reading[0]]
        options = replace(options, backend=tuple(backends))
        notes = (note,) if note else ()
    hooks: Any = DemoHooks(lab_dir, "realistic" if args.realistic else "fast", schedule, info, notes,
                           stale_dns=args.stale_dns, switchover=args.switchover is not None)
    if exec_argv:
        from fiswatch.lab.exec_demo import ExecAlongside

        hooks = ExecAlongside(hooks, exec_argv, lab_dir, os.path.splitext(str(options.record))[0] + "-exec.log",
                              aws=args.exec_aws)
    try:
        code = watch(options, endpoints, tuple(info.nameserver), hooks=hooks)
        failure = getattr(hooks, "failure", None)
        if failure:  # --exec never ran: repeated under the summary, and the demo did not do what was asked
            say("--exec: %s" % failure)
            code = code or EXIT_FAIL
    finally:
        if started_here and not args.keep_lab:
            say("stopping the lab this demo started ...")
            try:
                api.lab_down(lab_dir, say=say)
            except api.LabError as exc:
                say(str(exc))
        else:
            say(_lab_left(api, lab_dir))
    return code


def demo_readers(args: argparse.Namespace) -> int:
    """The Aurora readers of a lab the demo starts: 2 unless told (`--readers`), so the default screen has its
    read column on a reader the failover never promotes; 1 for a Blue/Green switchover (its lesson is the
    switchover, and the green environment doubles every instance)."""
    if args.readers is not None:
        return int(args.readers)
    return 1 if args.switchover is not None else 2


def outage_label(target: str) -> str:
    """What the event log calls one of the demo's outages.

    >>> outage_label("patch"), outage_label("rds")
    ('patch aurora', 'failover rds')
    """
    return {"crash": "crash aurora", "patch": "patch aurora"}.get(target, "failover " + target)


def _demo_reads(args: argparse.Namespace, info, options):
    """The demo's endpoints with its reads (`--read NAME`, or the default read column) and its options."""
    from fiswatch.config.reads import surviving_reader, with_reads

    names = list(options.read)
    if not names and (args.reads or (args.reads is None and info.readers > 1)):
        reader = surviving_reader(info)
        names = [reader] if reader else []
    return with_reads(list(info.endpoints), names, info), replace(options, read=tuple(names))


def _lab_left(api, lab_dir: str) -> str:
    """What is true of the lab the demo leaves: still running (and how to stop it), or not."""
    down = "`fiswatch lab down%s`" % ("" if lab_dir == api.default_lab_dir() else " --dir " + lab_dir)
    try:
        api.lab_status(lab_dir)
    except api.LabNotRunning:
        return "the lab in %s is no longer running (stopped during the demo)" % lab_dir
    except api.LabError as exc:
        return "the lab in %s does not answer as it should (%s): %s cleans up" % (lab_dir, exc, down)
    return "the lab keeps running: stop it with " + down


say = functools.partial(say_line, prefix="fiswatch demo: ")  # one line on stderr (fiswatch.output.streams)
