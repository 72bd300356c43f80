"""`fiswatch watch`: run the probes, feed the outputs, and end every run the same way.

However a run ends (q, Ctrl-C, --duration, SIGTERM, SIGHUP, the terminal or the stdout
reader going away), the same steps follow: probes stopped, writes drained into the
record, verification, summary, private record removed. Every output (record, --json,
--plain, the summary on stdout, CloudWatch) has its own thread and queue, so none of
them can hold the run; what could not be written is said at the end (fiswatch.commands.run_end).

Wiring: the parsed arguments become one frozen WatchOptions in `run_watch` (demo makes its
own); `watch` then builds each part with what it needs, in order: the run's inbox and stop
signal, the AWS sources (reporting into the inbox), the record and the other outputs
(their error handlers report into the inbox too), and last the Runner, handed all of them.
"""
import argparse
import os
import threading
from typing import Callable, Dict, List, Sequence, Tuple

from fiswatch import events as E
from fiswatch.config.sources import aws_call, collect_endpoints
from fiswatch.exits import EXIT_FAIL, CommandError, UsageError
from fiswatch.model import Endpoint, Event
from fiswatch.config.options import RUN_EPILOG, WatchOptions, add_endpoint_args, add_output_args, add_probe_args
from fiswatch.output.streams import say

PLAIN_FILE_WIDTH = 1000  # --plain into a file or pipe: no terminal width to cut messages at
STDOUT_QUEUE = 8  # frames/texts stdout may fall behind before frames are dropped


def add_watch_parser(sub) -> None:
    p = sub.add_parser("watch", help="run the probes and show the dashboard",
                       description="Run every backend against every endpoint and show them side by side.",
                       epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_endpoint_args(p)
    add_probe_args(p)
    add_output_args(p)
    p.add_argument("--exec", metavar="COMMAND", dest="exec_command",
                   help="with --lab: also run your own program in the lab (`fiswatch lab exec`), measured from the "
                        "wire as a line beside the probes; its output goes to a log next to the record")
    p.set_defaults(handler=run_watch)


def output_mode(options: WatchOptions, stream=None) -> str:
    from fiswatch.output.plain import plain_wanted

    if options.json:
        return "json"
    if options.plain or plain_wanted(stream):
        return "plain"
    return "curses"


def run_watch(args: argparse.Namespace) -> int:
    options = WatchOptions.from_args(args)
    check_record_target(options)
    exec_argv = None
    if getattr(args, "exec_command", None) is not None:  # bad --exec: one line, exit 2, before anything starts
        from fiswatch.lab.exec_demo import exec_argv_for_watch

        exec_argv = exec_argv_for_watch(args.exec_command, options.endpoints.lab)
    try:
        endpoints, nameserver = collect_endpoints(options.endpoints)
        if options.read:  # --read NAME: after the endpoints are known (the lab's read endpoints too)
            from fiswatch.config.reads import with_reads
            from fiswatch.config.sources import lab_info

            lab = lab_info(options.endpoints.lab) if options.endpoints.lab is not None else None
            endpoints = with_reads(endpoints, options.read, lab)
    except CommandError as exc:
        say(str(exc))
        return EXIT_FAIL
    hooks = None
    if options.endpoints.lab is not None:  # the lab's liveness beside the run; with --exec, the program too
        from fiswatch.lab.exec_demo import watch_hooks

        hooks = watch_hooks(exec_argv, options.endpoints.lab, endpoints, options.record)
    return watch(options, endpoints, nameserver, hooks=hooks)


def check_record_target(options: WatchOptions) -> None:
    """Refuse an existing --record file before anything starts (UsageError naming --overwrite)."""
    from fiswatch.output.record import exists_message

    if options.record and not options.overwrite and os.path.lexists(options.record):
        raise UsageError(exists_message(options.record))


def watch(options: WatchOptions, endpoints: Sequence[Endpoint], nameserver, hooks=None) -> int:
    """Run probes until q, Ctrl-C, --duration or a signal; print the summary.

    `hooks` lets demo add keys and jobs: `keys` and `actions` before the run, `start(runner)`
    once it runs, `before_stop(runner)` when it ends.
    """
    from fiswatch.backends.base import BackendOptionError
    from fiswatch.backends.registry import UnknownBackend, resolve_specs
    from fiswatch.engine.monitor import Inbox
    from fiswatch.output.outlet import Outlet
    from fiswatch.output.streams import write_fd
    from fiswatch.commands.run_end import RunTrouble, final_verify, summary_lines
    from fiswatch.commands.run_stop import EndOnce, isatty, stop_on_signals
    from fiswatch.engine.runner import Output, RunOptions, Runner, check_backends

    check_record_target(options)
    from fiswatch.lab.resolver_hook import install_for

    install_for(endpoints, nameserver)  # the lab's names, where a driver looks them up itself (docs/lab.md)
    # made first: the outputs' error handlers and the AWS sources report into the run before it exists
    inbox = Inbox()
    stop_event = threading.Event()
    try:
        specs = resolve_specs(list(options.backend) if options.backend else None)
        labels = [s.label for s in specs]
        # per endpoint: `aurora/pymysql` beside `instance-3/pymysql` is two probes, not one twice
        ran = [(e.name, s.label) for e in endpoints for s in specs if not s.endpoints or e.name in s.endpoints]
        if len(set(ran)) != len(ran):
            raise UsageError("the same backend is given twice: %s" % ", ".join(labels))
        run_options = RunOptions(interval=options.interval, stall_after=options.stall_after, nameserver=nameserver,
                                 connect_by_name=options.connect_by_name, tls=options.tls)
        extras = aws_extras(options, endpoints, inbox.emit)
        check_backends(endpoints, specs, options.tls)
    except (BackendOptionError, UnknownBackend, ValueError) as exc:
        raise UsageError(str(exc))
    except CommandError as exc:
        say(str(exc))
        return EXIT_FAIL
    mode = output_mode(options)
    trouble = RunTrouble(mode, inbox.emit, stop_event.set)
    # Every run is recorded: the summary and the verification read the record back, so
    # memory stays flat. Without --record the file is private and removed at the end.
    record_path = options.record or private_record_path()
    record = open_record(record_path, options.overwrite, trouble.record_failed)
    if record is None:
        return EXIT_FAIL
    record_output = Output(event_sink_to(record.write), "record", maxsize=20000, drain_first=True)
    outputs = [record_output]
    stdout = Outlet("stdout", lambda text: write_fd(1, text), maxsize=STDOUT_QUEUE, on_error=trouble.stdout_failed)
    json_output = None
    if mode == "json":
        from fiswatch.output.jsonl import JsonLines
        from fiswatch.output.streams import FdStream

        json_output = Output(JsonLines(FdStream(1)), "json", on_error=trouble.stdout_failed)  # type: ignore[arg-type]
        outputs.append(json_output)
    elif mode == "plain":  # warnings raised during the run (CloudWatch, topology, --exec, not verified): stderr
        from fiswatch.output.plain import warning_sink

        outputs.append(Output(warning_sink(say, trouble.stderr_muted), "stderr"))
    outputs.extend(extras.outputs)
    keys: List[Tuple[str, str]] = list(extras.keys) + list(hooks.keys if hooks is not None else ())
    runner = Runner(endpoints, specs, run_options, topology=extras.topology,
                    status=extras.status_lines or getattr(hooks, "status_lines", None),
                    outputs=outputs, record_path=record_path, keys=keys, inbox=inbox, stop_event=stop_event,
                    programs=getattr(hooks, "programs", ()), down=getattr(hooks, "down", None))
    actions: Dict[str, Callable[[], None]] = {"pause": runner.toggle_pause}
    actions.update(extras.actions)
    if hooks is not None:
        actions.update(hooks.actions)
    stop_on_signals(runner.stop_event)
    runner.start()
    extras.start()
    if hooks is not None:
        hooks.start(runner)
    warn_missing_passwords(runner, endpoints, mode)

    timer = None
    if options.duration is not None:
        timer = threading.Timer(options.duration, runner.stop_event.set)
        timer.daemon = True
        timer.start()

    def finish(stuck: bool) -> int:
        """The end steps, once: stop, drain, verify, record, summary, what is missing; the exit code."""
        if stuck:
            trouble.terminal_stuck()
        if timer is not None:
            timer.cancel()
        extras.stop()
        if hooks is not None:
            hooks.before_stop(runner)
        runner.stop(closing=lambda: final_verify(runner, endpoints, nameserver, not options.no_verify, mode,
                                                 trouble.quiet, options.record))
        record_outlet = runner.outlet(record_output)
        if not record_outlet.stuck:
            record.close()
        try:
            problems = trouble.end_lines(record, record_outlet, runner.final_events, record_path, not options.record,
                                         runner.outlet(json_output) if json_output is not None else None)
            if mode != "json" and not stuck:
                lines = summary_lines(record_path, runner.final_events, options.record)
                stdout.put("\n".join(lines) + "\n")
            stdout.close(1.0)
            if not (stuck and isatty(2)):  # stderr on the same stuck terminal would block
                for line in problems:
                    say(line)
        finally:
            if not options.record:
                remove_private_record(record_path)
        return trouble.exit_code(problems)

    ending = EndOnce()
    if mode == "curses":
        ending.rescue_when_stuck(runner.stop_event, finish)
    try:
        if mode == "curses":
            if run_curses(runner, actions, extras.confirm_keys, options.no_color, stdout) == "lost":
                trouble.lost_terminal()
        elif mode == "plain":
            run_plain(runner, stdout)
        else:
            runner.wait(None)
    except KeyboardInterrupt:
        pass
    finally:
        if not ending.claim():
            ending.park()  # the rescue thread is ending the run, and then the process
        code = finish(False)
    return code


def warn_missing_passwords(runner, endpoints: Sequence[Endpoint], mode: str) -> None:
    from fiswatch.config.checks import password_env_name

    for ep in endpoints:
        if ep.password is None:
            message = "no password for endpoint %s (set %s or MYSQL_PWD): trying without one" % (
                ep.name, password_env_name(ep.name))
            runner.emit(E.warning(message))  # --plain: the warning sink says it on stderr


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


def open_record(path: str, overwrite: bool, on_error):
    from fiswatch.output.record import RecordError, RecordExists, RecordWriter

    try:
        return RecordWriter(path, overwrite=overwrite, on_error=on_error)
    except RecordExists as exc:
        raise UsageError(str(exc))
    except RecordError as exc:
        say(str(exc))
        return None


def run_curses(runner, actions, confirm_keys, no_color: bool, stdout) -> str:
    """The dashboard until it ends: "quit", "stop" or "lost" (the terminal went away)."""
    from fiswatch.ui.screen import run_dashboard
    from fiswatch.ui.shell import DashboardUnavailable

    color = False if (no_color or os.environ.get("NO_COLOR")) else None
    try:
        how = run_dashboard(lambda: runner.view, actions, runner.stop_event, color=color, confirm_keys=confirm_keys)
    except DashboardUnavailable as exc:  # e.g. an unknown TERM: fall back to the plain text
        say(str(exc))
        run_plain(runner, stdout)
        how = "stop"
    runner.stop_event.set()
    return how or "quit"


def run_plain(runner, stdout) -> None:
    """The workshop's text every second, handed to stdout's own thread (a blocked stdout drops frames)."""
    from fiswatch.output.plain import plain_lines

    width = PLAIN_FILE_WIDTH
    try:
        if os.isatty(1):
            width = max(40, os.get_terminal_size(1).columns)
    except OSError:
        pass
    while not runner.stop_event.wait(1.0):
        stdout.put("\n".join(plain_lines(runner.view, width)) + "\n\n")


# -- AWS pieces the watch command may run ----------------------------------------------------------------------
class NoExtras:
    """No AWS sources: the default."""

    topology = None
    status_lines = None
    keys: Tuple[Tuple[str, str], ...] = ()
    actions: Dict[str, Callable[[], None]] = {}
    confirm_keys: Tuple[str, ...] = ()
    outputs: Tuple = ()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def aws_extras(options: WatchOptions, endpoints: Sequence[Endpoint], emit: Callable[[Event], None]):
    """Topology, FIS experiment and CloudWatch sources, when the AWS flags ask for them."""
    aws = options.endpoints.aws
    if not aws.wanted():
        return NoExtras()
    from fiswatch.aws.runtime import AwsExtras

    return aws_call(AwsExtras.from_options, aws, endpoints, emit)


def event_sink_to(func: Callable[[Event], None]):
    """Adapt a per-event callable to a runner sink."""
    def sink(view, events):
        for e in events:
            func(e)
    return sink
