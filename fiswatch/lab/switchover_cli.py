"""`fiswatch lab switchover [--profile aws|fast] [--json]`: the parser and the command line's outcome.

The work is lab/switchover.py's. Exit codes: 0 done, 1 stopped midway (rolled back or completed, the
line says which), 2 nothing started (no green environment, another failover/crash/switchover running,
an unknown profile or --fault, a switchover already done), 130 interrupted. A switchover killed midway
is completed or rolled back by the next one, which then exits 1 saying which.
"""
import argparse
import json
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple


def add_switchover_parser(actions: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    sw = actions.add_parser(
        "switchover", help="switch a `lab up --blue-green` lab's green environment over, as Blue/Green does",
        description="mysql.rds_topology goes AVAILABLE -> SWITCHOVER_INITIATED -> SWITCHOVER_IN_PROGRESS -> "
                    "SWITCHOVER_IN_POST_PROCESSING -> SWITCHOVER_COMPLETED; blue read-only, sessions dropped, green "
                    "promoted, blue names renamed to green's addresses, old blue -old1 (docs/lab.md, Blue/Green).")
    common(sw)
    sw.add_argument("--profile", default="fast", help="aws (the measured timeline, ~1 min + 44 s) or fast "
                    "(~6 s, the lab's assumption; default)")
    sw.add_argument("--fault", default="", help="what users hit (docs/lab.md, Blue/Green faults): rollback (rolled "
                    "back while IN_PROGRESS), frozen-metadata (blue stays IN_PROGRESS, green's rows removed), "
                    "monitors-refused[=SECONDS] (logins refused SECONDS from IN_PROGRESS, default 10), no-metadata "
                    "(no mysql.rds_topology), green-ids-kept (-green- SERVER_IDs stay), no-grant-on-green (SELECT "
                    "on mysql.rds_topology revoked on green)")
    sw.add_argument("--json", action="store_true", help="print each step as a JSON line (the `lab` event)")


def run_switchover_command(args: argparse.Namespace, lab_dir: str) -> int:
    from fiswatch.lab.api import LabError, lab_status
    from fiswatch.lab.failover import make_emitter
    from fiswatch.lab.sigterm import sigterm_interrupts
    from fiswatch.lab.switchover import SwitchoverError, run_switchover

    def as_json(event: Any) -> None:
        print(json.dumps(event.as_dict(), sort_keys=True), flush=True)

    emit = make_emitter(lab_dir, "bluegreen", False, as_json if args.json else None,
                        None if args.json else (lambda line: print(line, flush=True)), what="switchover")
    from fiswatch.lab.bg_faults import FaultError, parse

    try:
        parse(args.fault)  # a typo is said first, lab or not
    except FaultError as exc:
        print("fiswatch lab switchover: %s" % exc, file=sys.stderr)
        return 2
    try:
        lab_status(lab_dir)  # one line when no lab runs there
        with sigterm_interrupts():
            run_switchover(lab_dir, emit, profile=args.profile, fault=args.fault)
    except SwitchoverError as exc:
        print("fiswatch lab switchover: %s" % exc, file=sys.stderr)
        return 2 if exc.usage else 1
    except LabError as exc:
        print("fiswatch lab switchover: %s" % exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fiswatch lab switchover: interrupted; check `fiswatch lab status --dir %s`" % lab_dir, file=sys.stderr)
        return 130
    return 0


@dataclass(frozen=True)
class PhaseNow:
    """The switchover's step as the demo shows it: swapped whole by the switchover's thread."""

    step: str
    began: float  # the step's time (lab/switchover.py: when it began)
    started: float  # SWITCHOVER_INITIATED's


class SwitchoverPhase:
    """The demo's switchover phase line (a status line, below the event log, while and after it runs):
    `Blue/Green SWITCHOVER_IN_PROGRESS 1.2s (t+1.7s)`; at 80 columns the step and its age come first."""

    def __init__(self) -> None:
        self.now: Optional[PhaseNow] = None

    def wrap(self, sink: Callable[[Any], None]) -> Callable[[Any], None]:
        from fiswatch import events as E

        def seen(event: Any) -> None:
            fields = dict(event.fields)
            if event.event == E.LAB and fields.get("outage") == "switchover":
                step = str(fields.get("step"))
                started = self.now.started if self.now is not None and step != "SWITCHOVER_INITIATED" else event.ts
                self.now = PhaseNow(step, event.ts, started)
            sink(event)
        return seen

    def lines(self, now: Optional[float] = None) -> Tuple[str, ...]:
        phase = self.now
        if phase is None:
            return ()
        now = time.time() if now is None else now
        if phase.step in ("done", "rolled_back"):
            return ("Blue/Green switchover %s at t+%.1fs" % (phase.step.replace("_", " "),
                                                              phase.began - phase.started),)
        return ("Blue/Green %s %.1fs (t+%.1fs)" % (phase.step, now - phase.began, now - phase.started),)


def demo_switchover(lab_dir: str, sink: Callable[[Any], None], cancel: Any) -> str:
    """The demo's switchover (`--switchover`, key s): each step an event in the run's log; returns the
    target whose writes the demo then verifies (aurora: its name now answers green)."""
    from fiswatch.lab.failover import make_emitter
    from fiswatch.lab.switchover import run_switchover

    run_switchover(lab_dir, make_emitter(lab_dir, "bluegreen", False, sink, what="switchover"), cancel=cancel)
    return "aurora"


def exec_switchover(lab_dir: str, sink: Callable[[Any], None]) -> None:
    """`lab exec --switchover aurora@S` (lab/gate.py): a switchover that cannot run or stops midway is a
    ValueError, which the schedule reports as a failed step."""
    from fiswatch.lab.switchover import SwitchoverError

    try:
        demo_switchover(lab_dir, sink, None)
    except SwitchoverError as exc:
        raise ValueError(str(exc)) from None


__all__ = ["PhaseNow", "SwitchoverPhase", "add_switchover_parser", "demo_switchover", "exec_switchover", "run_switchover_command"]
