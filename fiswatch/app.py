"""The `watch`, `create-db` and `backends` commands."""
import argparse
import os
import sys
import threading
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from fiswatch.config import ConfigError, parse_endpoint, with_password
from fiswatch.model import Endpoint, Event

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
COLUMN = 30  # the workshop's column width


class CommandError(Exception):
    """A failure to report in one line (exit 1)."""


# -- parsers ---------------------------------------------------------------------------------------------
def add_endpoint_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("endpoints")
    g.add_argument("--endpoint", action="append", metavar="NAME=mysql://USER@HOST[:PORT]/DB", default=[],
                   help="a database to write to (repeatable); password from FISWATCH_PASSWORD_<NAME>, "
                        "MYSQL_PWD or a prompt, never from the URL")
    g.add_argument("--lab", nargs="?", const="", default=None, metavar="DIR",
                   help="take endpoints, credentials and the DNS server from a running local lab "
                        "(default dir: the one `fiswatch lab up` uses)")
    g.add_argument("--table", default="test", help="table to write to (default: %(default)s)")
    g.add_argument("--nameserver", metavar="IP[:PORT]",
                   help="resolve endpoint names with this DNS server instead of the system's")
    from fiswatch.aws.cli import add_aws_options

    add_aws_options(p)


def add_probe_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("probes")
    g.add_argument("--backend", action="append", metavar="NAME[:OPT=VAL,...]",
                   help="connector backend to run against every endpoint (repeatable; default: mysql-connector "
                        "and pymysql), e.g. --backend mysql-connector:read_timeout=1; see `fiswatch backends`")
    g.add_argument("--interval", type=_seconds, default=0.05, metavar="SECONDS",
                   help="pause between rounds of INSERT/COMMIT/SELECT (default: %(default)s)")
    g.add_argument("--stall-after", type=_seconds, default=2.0, metavar="SECONDS",
                   help="a driver call in flight longer than this shows as STALLED (default: %(default)s)")
    g.add_argument("--connect-by-name", action="store_true",
                   help="let the driver resolve the host name itself (for TLS host checks); the address shown "
                        "is then fiswatch's own lookup")


def add_output_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("output")
    mode = g.add_mutually_exclusive_group()
    mode.add_argument("--plain", action="store_true",
                      help="the workshop's column text, reprinted every second (automatic when stdout is not a "
                           "terminal or TERM=dumb)")
    mode.add_argument("--json", action="store_true", help="one JSON object per line (see docs/events.md)")
    g.add_argument("--duration", type=_seconds, metavar="SECONDS", help="end the run by itself after this long")
    g.add_argument("--record", metavar="FILE", help="write every event and acknowledged write to FILE (JSON lines)")
    g.add_argument("--no-color", action="store_true", help="no colours (also NO_COLOR=1)")
    g.add_argument("--no-verify", action="store_true",
                   help="skip checking, at the end, that every acknowledged write is on the current writer")


def add_watch_parser(sub) -> None:
    p = sub.add_parser("watch", help="run the probes and show the dashboard",
                       description="Run every backend against every endpoint and show them side by side.")
    add_endpoint_args(p)
    add_probe_args(p)
    add_output_args(p)
    p.set_defaults(handler=run_watch)


def add_demo_parser(sub) -> None:
    from fiswatch import demo

    demo.add_parser(sub)


def add_create_db_parser(sub) -> None:
    p = sub.add_parser("create-db", help="create the test table if missing and show each endpoint's address",
                       description="Create the workshop's table (id INT AUTO_INCREMENT PRIMARY KEY, value INT) "
                                   "where it is missing and print each endpoint with the address it resolves to.")
    add_endpoint_args(p)
    p.add_argument("--backend", default="pymysql", help="library used to connect (default: %(default)s)")
    p.set_defaults(handler=run_create_db)


def add_backends_parser(sub) -> None:
    p = sub.add_parser("backends", help="list installed connector backends, versions and default options")
    p.set_defaults(handler=run_backends)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number of seconds" % text)
    if value < 0:
        raise argparse.ArgumentTypeError("seconds must not be negative")
    return value


# -- endpoints ---------------------------------------------------------------------------------------------
def collect_endpoints(args: argparse.Namespace) -> Tuple[List[Endpoint], Optional[Tuple[str, int]]]:
    """Endpoints from --endpoint, --lab and AWS secrets; the DNS server to use."""
    from fiswatch.cli import UsageError
    from fiswatch.resolve import parse_nameserver

    nameserver = None
    if getattr(args, "nameserver", None):
        try:
            nameserver = parse_nameserver(args.nameserver)
        except ValueError as exc:
            raise UsageError(str(exc))
    endpoints: List[Endpoint] = []
    for text in args.endpoint:
        try:
            endpoints.append(with_password(parse_endpoint(text, args.table)))
        except ConfigError as exc:
            raise UsageError(str(exc))
    if args.lab is not None:
        info = lab_info(args.lab)
        endpoints.extend(_with_table(e, args.table) for e in info.endpoints)
        nameserver = nameserver or tuple(info.nameserver)
    from fiswatch.aws.cli import endpoints_from_args

    endpoints.extend(_with_table(e, args.table) for e in aws_call(endpoints_from_args, args))
    names = [e.name for e in endpoints]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError("endpoint name %s given twice; each endpoint needs its own name" % ", ".join(dupes))
    if not endpoints:
        raise UsageError("no endpoint: give --endpoint NAME=mysql://USER@HOST/DB, --lab, or --workshop "
                         "(or run `fiswatch demo` for the local lab)")
    return endpoints, nameserver


def _with_table(endpoint: Endpoint, table: str) -> Endpoint:
    from dataclasses import replace

    return endpoint if endpoint.table == table else replace(endpoint, table=table)


def lab_info(lab_dir: str):
    from fiswatch.lab import api

    try:
        return api.lab_status(lab_dir or api.default_lab_dir())
    except (api.LabNotRunning, api.LabError) as exc:
        raise CommandError(str(exc))


def aws_call(func: Callable, *args):
    """Run an AWS call; its errors become one line (exit 1)."""
    from fiswatch.aws.session import AwsError

    try:
        return func(*args)
    except AwsError as exc:
        raise CommandError(str(exc))


# -- watch -------------------------------------------------------------------------------------------------
def output_mode(args: argparse.Namespace, stream=None) -> str:
    from fiswatch.output.plain import plain_wanted

    if args.json:
        return "json"
    if args.plain or plain_wanted(stream):
        return "plain"
    return "curses"


def run_watch(args: argparse.Namespace) -> int:
    try:
        endpoints, nameserver = collect_endpoints(args)
    except CommandError as exc:
        sys.stderr.write("fiswatch: %s\n" % exc)
        return EXIT_FAIL
    return watch(args, endpoints, nameserver)


def watch(args: argparse.Namespace, endpoints: Sequence[Endpoint], nameserver, hooks=None) -> int:
    """Run probes until q, Ctrl-C or --duration; print the summary. `hooks` lets demo add keys and jobs."""
    from fiswatch.backends.base import BackendOptionError
    from fiswatch.backends.registry import UnknownBackend, resolve_specs
    from fiswatch.cli import UsageError
    from fiswatch.runner import RunOptions, Runner

    try:
        specs = resolve_specs(args.backend)
        labels = [s.label for s in specs]
        if len(set(labels)) != len(labels):
            raise UsageError("the same backend is given twice: %s" % ", ".join(labels))
        options = RunOptions(interval=args.interval, stall_after=args.stall_after, nameserver=nameserver,
                             connect_by_name=args.connect_by_name)
        extras = aws_extras(args, endpoints)
        runner = Runner(endpoints, specs, options, topology=extras.topology, status=extras.status_lines)
    except (BackendOptionError, UnknownBackend, ValueError) as exc:
        raise UsageError(str(exc))
    except CommandError as exc:
        sys.stderr.write("fiswatch: %s\n" % exc)
        return EXIT_FAIL
    mode = output_mode(args)
    # Every run is recorded: the summary and the verification read the record back, so
    # memory stays flat. Without --record the file is private and removed at the end.
    record_path = args.record or private_record_path()
    record = open_record(record_path)
    if record is None:
        return EXIT_FAIL
    runner.record_path = record_path
    runner.sinks.append(event_sink_to(record.write))
    if mode == "json":
        from fiswatch.output.jsonl import JsonLines

        runner.sinks.append(JsonLines(sys.stdout))
    extras.attach(runner)
    actions: Dict[str, Callable[[], None]] = {"pause": runner.toggle_pause}
    keys: List[Tuple[str, str]] = list(extras.keys)
    actions.update(extras.actions)
    if hooks is not None:
        hooks.attach(runner, actions, keys)
    runner.monitor.keys = tuple(keys)
    stop_on_signals(runner.stop_event)
    runner.start()
    for ep in endpoints:
        if ep.password is None:
            from fiswatch.config import password_env_name

            runner.emit(Event.make("warning", message="no password for endpoint %s (set %s or MYSQL_PWD): trying "
                                   "without one" % (ep.name, password_env_name(ep.name))))

    timer = None
    if args.duration:
        timer = threading.Timer(args.duration, runner.stop_event.set)
        timer.daemon = True
        timer.start()
    try:
        if mode == "curses":
            run_curses(runner, actions, extras.confirm_keys, args.no_color)
        elif mode == "plain":
            run_plain(runner)
        else:
            runner.wait(None)
    except KeyboardInterrupt:
        pass
    finally:
        if timer is not None:
            timer.cancel()
        extras.stop()
        if hooks is not None:
            hooks.before_stop(runner)
        runner.stop(closing=lambda: final_verify(runner, endpoints, nameserver, args, mode))
        record.close()
    try:
        print_summary(record_path, mode, args.record)
    finally:
        if not args.record:
            remove_private_record(record_path)
    return EXIT_OK


def private_record_path() -> str:
    """A 0600 file in a fresh 0700 temp dir, for a run without --record."""
    import tempfile

    return os.path.join(tempfile.mkdtemp(prefix="fiswatch-"), "run.jsonl")


def remove_private_record(path: str) -> None:
    try:
        os.remove(path)
        os.rmdir(os.path.dirname(path))
    except OSError:
        pass


VERIFY_BUDGET = 3.0  # seconds the end of a run may spend verifying writes


def final_verify(runner, endpoints, nameserver, args, mode: str) -> List[Event]:
    """Check every acknowledged write of the run against the current writer.

    Only endpoints with a probe writing right now are checked (their writer answers), and
    within VERIFY_BUDGET seconds, so quitting stays quick even in the middle of a failover;
    `fiswatch verify FILE` checks a record later.
    """
    from fiswatch.report.autoverify import verify_record
    from fiswatch.model import State

    if getattr(args, "no_verify", False) or not runner.wrote():
        return []
    live = {pv.snapshot.endpoint for pv in runner.view.probes if pv.state is State.OK}
    skipped = sorted({e.name for e in endpoints} - live)
    events: List[Event] = [Event.make("warning", message="writes to %s not verified: no probe was writing at the "
                                      "end; check later with `fiswatch verify FILE`" % name) for name in skipped]
    if not live:
        return events
    if mode != "json":
        sys.stderr.write("fiswatch: verifying the acknowledged writes on each endpoint's current writer ...\n")
    found: List[Event] = []

    def work() -> None:
        try:
            found.extend(verify_record(runner.record_path, endpoints, nameserver, only=sorted(live))[1])
        except Exception as exc:  # verification must never turn the end of a run into a traceback
            found.append(Event.make("warning", message="verification failed: %s" % exc))

    worker = threading.Thread(target=work, name="verify", daemon=True)
    worker.start()
    worker.join(VERIFY_BUDGET)
    if worker.is_alive():
        return events + [Event.make("warning", message="verification did not finish in %.0fs; check later with "
                                    "`fiswatch verify FILE`" % VERIFY_BUDGET)]
    return events + list(found)


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGHUP (a closed SSM session) end the run like q: terminal restored, summary kept."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), lambda signum, frame: stop.set())


def open_record(path: str):
    from fiswatch.output.record import RecordError, RecordWriter

    try:
        return RecordWriter(path)
    except RecordError as exc:
        sys.stderr.write("fiswatch: %s\n" % exc)
        return None


def run_curses(runner, actions, confirm_keys, no_color: bool) -> None:
    from fiswatch.ui.screen import DashboardUnavailable, run_dashboard

    color = False if (no_color or os.environ.get("NO_COLOR")) else None
    try:
        run_dashboard(lambda: runner.view, actions, runner.stop_event, color=color, confirm_keys=confirm_keys)
    except DashboardUnavailable as exc:  # e.g. an unknown TERM: fall back to the plain text
        sys.stderr.write("fiswatch: %s\n" % exc)
        run_plain(runner)
    runner.stop_event.set()


def run_plain(runner) -> None:
    from fiswatch.output.plain import plain_lines

    width = 80
    try:
        width = max(40, os.get_terminal_size(sys.stdout.fileno()).columns)
    except OSError:
        pass
    while not runner.stop_event.wait(1.0):
        sys.stdout.write("\n".join(plain_lines(runner.view, width)) + "\n\n")
        sys.stdout.flush()


def print_summary(path: str, mode: str, record_path: Optional[str]) -> None:
    """The end-of-run summary, from the same code as `fiswatch report`, read from the run's record."""
    if mode == "json":
        return  # the summary event is the last JSON line
    from fiswatch.output.record import read_record
    from fiswatch.report.build import build_report
    from fiswatch.report.render_text import summary_lines

    report = build_report(read_record(path))
    lines = summary_lines(report, width=80)
    if record_path:
        lines.append("record: %s  (fiswatch report %s)" % (record_path, record_path))
    sys.stdout.write("\n".join(lines) + "\n")


# -- AWS pieces the watch command may run ----------------------------------------------------------------------
class NoExtras:
    """No AWS sources: the default."""

    topology = None
    status_lines = None
    keys: Tuple[Tuple[str, str], ...] = ()
    actions: Dict[str, Callable[[], None]] = {}
    confirm_keys: Tuple[str, ...] = ()

    def attach(self, runner) -> None:
        pass

    def stop(self) -> None:
        pass


def aws_extras(args: argparse.Namespace, endpoints: Sequence[Endpoint]):
    """Topology, FIS experiment and CloudWatch sources, when the AWS flags ask for them."""
    wanted = any(getattr(args, k, None) for k in ("experiment", "cloudwatch", "secret", "workshop",
                                                  "cluster_id", "instance_id"))
    if not wanted:
        return NoExtras()
    from fiswatch.aws.runtime import AwsExtras

    return aws_call(AwsExtras.from_args, args, endpoints)


# -- create-db -------------------------------------------------------------------------------------------------
CREATE_TABLE = "CREATE TABLE IF NOT EXISTS `%s` (id INT AUTO_INCREMENT PRIMARY KEY, value INT)"


def run_create_db(args: argparse.Namespace) -> int:
    from fiswatch.backends.base import BackendOptionError
    from fiswatch.backends.registry import UnknownBackend, make_backend, parse_backend_spec
    from fiswatch.cli import UsageError
    from fiswatch.resolve import Resolver

    try:
        endpoints, nameserver = collect_endpoints(args)
        backend = make_backend(parse_backend_spec(args.backend))
    except (BackendOptionError, UnknownBackend) as exc:
        raise UsageError(str(exc))
    except CommandError as exc:
        sys.stderr.write("fiswatch: %s\n" % exc)
        return EXIT_FAIL
    resolver = Resolver(nameserver)
    addresses, problems = [], []
    for ep in endpoints:
        res = resolver.resolve(ep.host)
        if res.address is None:
            addresses.append("(%s)" % (res.error or "no address"))
            problems.append("%s: %s does not resolve (%s)" % (ep.name, ep.host, res.error))
            continue
        addresses.append(res.address)
        try:
            conn = backend.connect(res.address, ep.port, ep.user, ep.password.reveal() if ep.password else "",
                                   ep.database, server_hostname=ep.host)
            try:
                cur = conn.cursor()
                cur.execute(CREATE_TABLE % ep.table)
                conn.commit()
            finally:
                conn.close()
        except Exception as exc:
            problems.append("%s: %s" % (ep.name, backend.classify(exc).text()))
    print("".join(("%-" + str(COLUMN) + "s") % e.name.upper() for e in endpoints).rstrip())
    print("".join(("%-" + str(COLUMN) + "s") % a for a in addresses).rstrip())
    for line in problems:
        sys.stderr.write("fiswatch create-db: %s\n" % line)
    return EXIT_FAIL if problems else EXIT_OK


# -- backends --------------------------------------------------------------------------------------------------
def run_backends(args: argparse.Namespace) -> int:
    from fiswatch.backends.registry import describe_backends

    rows = describe_backends()
    print("%-16s %-24s %-9s %s" % ("BACKEND", "LIBRARY", "VERSION", "DEFAULT OPTIONS"))
    for name, library, version, defaults, notes in rows:
        print("%-16s %-24s %-9s %s" % (name, library, version, defaults))
        if notes:
            print("%-16s %s" % ("", notes))
    print("\nA timeout of 'none' waits forever: mysql-connector-python has read_timeout since 9.2,\n"
          "but it defaults to none. Set options per backend: --backend mysql-connector:read_timeout=1")
    return EXIT_OK


def event_sink_to(func: Callable[[Event], None]):
    """Adapt a per-event callable to a runner sink."""
    def sink(view, events):
        for e in events:
            func(e)
    return sink
