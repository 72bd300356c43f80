"""Objects wired when they are built: the Runner, the options records, the run's trouble flags.

No attribute is set on a Runner or a Monitor after construction: what they need (outputs,
record path, keys, the inbox) goes in through the constructor and shows where users see it
(the View, the outputs). Options are one frozen record read once from the command line.
State that crosses threads is one frozen value swapped whole.
"""
import dataclasses
import errno
import threading

import pytest

from conftest import EventLog
from fiswatch.cli import build_parser
from fiswatch.commands.run_end import RunTrouble
from fiswatch.config.options import EndpointOptions, WatchOptions
from fiswatch.engine.monitor import Inbox
from fiswatch.engine.runner import Output, Runner
from fiswatch.exits import EXIT_INCOMPLETE
from fiswatch import events as E
from fiswatch.model import BackendSpec, Endpoint


def test_runner_takes_outputs_keys_record_path_and_inbox_when_built(tmp_path):
    inbox = Inbox()
    log = EventLog()
    stop = threading.Event()
    ep = Endpoint("db", "127.0.0.1", 9, "nobody", "nodb")
    runner = Runner([ep], [BackendSpec("pymysql")], outputs=[Output(log, "test")], record_path=str(tmp_path / "r"),
                    keys=[("f", "failover aurora")], inbox=inbox, stop_event=stop)
    assert runner.record_path == str(tmp_path / "r") and runner.stop_event is stop
    assert runner.monitor.probes == runner.probes and runner.monitor.watchers == runner.watchers
    inbox.emit(E.info("from before the runner existed"))
    view = runner.step()  # never started: one tick by hand
    assert view.keys == (("f", "failover aurora"),)  # what the dashboard's help line shows
    assert runner.flush_outputs(10)
    assert [e.get("message") for e in log.events if e.event == "info"] == ["from before the runner existed"]
    assert any(e.event == "state" and e.get("probe") == "db/pymysql" for e in log.events)
    runner.close_outputs(5)


def test_watch_options_are_read_once_and_frozen():
    args = build_parser().parse_args(["watch", "--endpoint", "db=mysql://u@127.0.0.1/d", "--backend", "pymysql",
                                      "--interval", "0.2", "--json", "--cloudwatch"])
    options = WatchOptions.from_args(args)
    assert options.endpoints.endpoint == ("db=mysql://u@127.0.0.1/d",) and options.backend == ("pymysql",)
    assert options.interval == 0.2 and options.json and not options.plain
    assert options.endpoints.aws.cloudwatch and options.endpoints.aws.wanted()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.record = "elsewhere.jsonl"  # type: ignore[misc]
    # demo has no endpoint group: its own record and backends come by replace(), args untouched
    demo_args = build_parser().parse_args(["demo", "--no-failover"])
    demo = WatchOptions.from_args(demo_args)
    assert demo.endpoints == EndpointOptions() and demo.backend is None and demo.record is None
    mine = dataclasses.replace(demo, record="/tmp/x.jsonl", backend=("pymysql",))
    assert mine.record == "/tmp/x.jsonl" and demo.record is None and demo_args.record is None


def test_run_trouble_says_a_stdout_failure_once_from_many_threads():
    emitted, stops = [], []
    trouble = RunTrouble("json", emitted.append, lambda: stops.append(1))
    barrier = threading.Barrier(8)

    def fail():
        barrier.wait()
        trouble.stdout_failed(OSError(errno.ENOSPC, "No space left on device"))
    threads = [threading.Thread(target=fail) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert len(emitted) == 1 and "No space left on device" in emitted[0].get("message")
    assert len(stops) == 8  # every failure asks the run to end
    flags = trouble.flags
    assert flags.stdout_error is not None and not flags.terminal_lost and not flags.stuck
    with pytest.raises(dataclasses.FrozenInstanceError):
        flags.stuck = True  # type: ignore[misc]
    trouble.terminal_stuck()
    assert trouble.flags.stuck and trouble.quiet and flags.stuck is False  # a new value; the old one unchanged
    assert trouble.exit_code([]) == EXIT_INCOMPLETE
