"""The end of a run: verify its writes, print its summary, and say loudly what is missing.

A run can lose parts of itself to the world around it: the record's disk or quota fills
(or `ulimit -f`), the record cannot keep up, stdout fails. `RunTrouble` hears each at once
(an event in the dashboard's log, a line on stderr outside the dashboard) and at the end
turns them into lines saying what they mean, and the exit code 3 (fiswatch.exits).
"""
import json
import threading
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, FrozenSet, Iterator, List, Optional, Sequence

from fiswatch import events as E
from fiswatch.exits import EXIT_INCOMPLETE, EXIT_OK
from fiswatch.model import Event
from fiswatch.output.streams import describe_stdout_error, say, silence, terminal_gone

VERIFY_BUDGET = 3.0  # seconds the end of a run may spend verifying writes


@dataclass(frozen=True)
class TroubleFlags:
    """What RunTrouble noted so far: one value, swapped whole under its lock."""

    stdout_error: Optional[str] = None  # stdout failed (disk full...): the line that said so
    terminal_lost: bool = False  # the terminal or the stdout reader went away
    stuck: bool = False  # the terminal stopped taking output at the end
    said: FrozenSet[str] = frozenset()  # warnings already on stderr (the --plain warning sink skips them)


class RunTrouble:
    """What went wrong around a run; callbacks run in output threads, so they only note and tell."""

    def __init__(self, mode: str, emit: Callable[[Event], None], stop: Callable[[], None]) -> None:
        self.mode = mode
        self.emit = emit
        self.stop = stop
        self.flags = TroubleFlags()
        self._lock = threading.Lock()

    def _note(self, **changes: Any) -> TroubleFlags:
        """Swap in the flags with `changes`; return the flags before."""
        with self._lock:
            before = self.flags
            self.flags = replace(before, **changes)
        return before

    @property
    def stdout_error(self) -> Optional[str]:
        return self.flags.stdout_error

    @property
    def terminal_lost(self) -> bool:
        return self.flags.terminal_lost

    @property
    def stuck(self) -> bool:
        return self.flags.stuck

    def stdout_failed(self, exc: BaseException) -> None:
        """stdout cannot be written: the reader left (silence) or the disk is full (one line). The run ends."""
        message = describe_stdout_error(exc)
        before = self._note(terminal_lost=True) if message is None else self._note(stdout_error=message)
        first = before.stdout_error is None and not before.terminal_lost
        if message is None:
            silence(1)
        if first:
            if message is not None:
                with self._lock:
                    self.flags = replace(self.flags, said=self.flags.said | {message})
                say(message + "; ending the run")
            self.emit(E.warning(message or "stdout closed (the reader or the terminal went "
                                "away): the run ends as on q"))
        self.stop()

    def lost_terminal(self) -> None:
        """The dashboard's terminal is gone: nothing more is shown, the run ends as on q."""
        self._note(terminal_lost=True)
        for fd in (1, 2):
            if terminal_gone((fd,)):
                silence(fd)
        self.emit(E.warning("the terminal closed: the run ends as on q"))

    def terminal_stuck(self) -> None:
        """The terminal stopped taking output while the run was asked to end: end without it."""
        self._note(stuck=True)
        self.emit(E.warning("the terminal stopped taking output (flow control or a stalled "
                            "session): the run ended without it; the summary is in the record"))

    def record_failed(self, message: str) -> None:
        """The record cannot be written (from its output thread): say so now, keep running."""
        text = "the record cannot be written: %s; the run goes on, but the record misses everything from now " \
               "(the end of the run says what)" % message
        self.emit(E.warning(text))
        if self.mode == "json":  # with --plain the warning sink says it (fiswatch.output.plain.warning_sink)
            say(text)

    def stderr_muted(self, message: str) -> bool:
        """For the --plain warning sink: already said, or nobody is there to read it."""
        return self.terminal_lost or message in self.flags.said

    def end_lines(self, record: Any, record_outlet: Any, final_events: Sequence[Event], path: str,
                  private: bool, json_outlet: Any = None) -> List[str]:
        """One loud line per thing the run could not keep, saying what it means."""
        lines = []
        where = "the record" if private else path
        end = _summary_ts(final_events)
        if record.error is not None:
            start = record.first_ts if record.first_ts is not None else record.failed_at
            t_fail = (record.failed_at or 0.0) - (start or 0.0)
            total = (end or record.failed_at or 0.0) - (start or 0.0)
            lines.append("record incomplete from t+%.1fs (%s): the summary covers only the first %.1fs of the "
                         "%.1fs run and the verification only the writes recorded before then; %d later events "
                         "(writes, states, the verification and the summary) are not in %s"
                         % (t_fail, record.error, t_fail, total, record.lost, where))
        elif record_outlet is not None and record_outlet.stuck:
            lines.append("record incomplete: writing %s did not finish (its disk stopped answering); the summary "
                         "and the verification cover only what reached it" % where)
        if record_outlet is not None and record_outlet.dropped and record.error is None:
            lines.append("record incomplete: %d batches of events were dropped because %s could not keep up; "
                         "the summary may miss writes and gaps" % (record_outlet.dropped, where))
        if json_outlet is not None and json_outlet.error is None and not self.terminal_lost and (
                json_outlet.dropped or json_outlet.stuck):
            lines.append("output incomplete: stdout did not take %s of the JSON lines (nobody was reading it); "
                         "the record has them all" % ("the end" if not json_outlet.dropped else
                                                      "%d batches" % json_outlet.dropped))
        if self.stuck:
            lines.append("output incomplete: the terminal stopped taking output, so the summary was not shown%s"
                         % ("" if private else "; it is in %s" % path))
        return lines  # a stdout failure was said once, when it happened

    @property
    def quiet(self) -> bool:
        """Nobody reads stdout any more (or it failed): no progress lines."""
        flags = self.flags
        return flags.terminal_lost or flags.stuck or flags.stdout_error is not None

    def exit_code(self, end_lines: Sequence[str]) -> int:
        return EXIT_INCOMPLETE if (end_lines or self.stdout_error is not None) else EXIT_OK


def _summary_ts(events: Sequence[Event]) -> Optional[float]:
    return next((e.ts for e in reversed(list(events)) if e.event == E.SUMMARY), None)


def final_verify(runner, endpoints, nameserver, wanted: bool, mode: str, quiet: bool = False,
                 record: Optional[str] = None) -> List[Event]:
    """Check every acknowledged write of the run against the current writer.

    Only endpoints with a probe writing right now are checked (their writer answers), and
    within VERIFY_BUDGET seconds, so quitting stays quick even in the middle of a failover;
    `fiswatch verify FILE` checks a record later (`record`: the --record file the lines name).
    """
    from fiswatch.report.autoverify import verify_record
    from fiswatch.model import State

    endpoints = [e for e in endpoints if not e.reads]  # read probes wrote nothing to verify
    if not wanted or not runner.wrote():
        return []
    later = "`fiswatch verify %s`" % record if record else "`fiswatch verify FILE`"
    live = {pv.snapshot.endpoint for pv in runner.view.probes if pv.state is State.OK} & {e.name for e in endpoints}
    skipped = sorted({e.name for e in endpoints} - live)
    events: List[Event] = [E.warning("writes to %s not verified: no probe was writing at the "
                                      "end; check later with %s" % (name, later)) for name in skipped]
    if not live:
        return events
    if mode != "json" and not quiet:
        say("verifying the acknowledged writes on each current writer ...")
    found: List[Event] = []

    def work() -> None:
        try:
            found.extend(verify_record(runner.record_path, endpoints, nameserver, only=sorted(live))[1])
        except Exception as exc:  # noqa: BLE001 - verification must never turn the end of a run into a traceback
            found.append(E.warning("verification failed: %s" % exc))

    worker = threading.Thread(target=work, name="verify", daemon=True)
    worker.start()
    worker.join(VERIFY_BUDGET)
    if worker.is_alive():
        return events + [E.warning("verification did not finish in %.0fs; check later with %s"
                                    % (VERIFY_BUDGET, later))]
    return events + list(found)


def summary_lines(path: str, final_events: Sequence[Event], record_path: Optional[str]) -> List[str]:
    """The end-of-run summary, from the same code as `fiswatch report`, read from the run's record.

    The record is streamed (fiswatch.report.digest), never held whole. When it lost its end
    (disk full), the verification and summary events are taken from memory, so a LOST
    WRITES verdict is shown all the same.
    """
    from fiswatch.output.record import RecordError, event_line, read_record
    from fiswatch.report.build import build_report
    from fiswatch.report.render_text import CHECK_LATER, summary_lines as report_lines

    def events() -> Iterator[Dict[str, Any]]:
        ended = False
        try:
            for ev in read_record(path):
                ended = ended or ev.get("event") == E.SUMMARY
                yield ev
        except RecordError:
            pass
        if not ended:
            for e in final_events:
                yield json.loads(event_line(e))

    lines = report_lines(build_report(events(), record_path=record_path or ""), width=80)
    if not record_path:  # the private record goes with the run: nothing to check later
        lines = [CHECK_LATER + "not possible: this run kept no record (add --record FILE next time)"
                 if line.startswith(CHECK_LATER) else line for line in lines]
    if record_path:
        lines.append("record: %s  (fiswatch report %s)" % (record_path, record_path))
    return lines
