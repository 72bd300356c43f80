"""`fiswatch fleet`: the instructor's view of the room, read back from CloudWatch.

Reads the metrics every `fiswatch watch --cloudwatch` publishes (fleet_data), builds the
room (fleet_model) and shows it: curses (fleet_screen), `--plain` or `--json`
(fleet_view). `--dashboard NAME` instead creates or updates a CloudWatch dashboard
(fleet_dashboard): the only write. Exit codes: 0 ok, 1 AWS failure, 2 bad usage.
"""
import argparse
import datetime
import math
import re
import sys
import threading
import time
from dataclasses import replace
from typing import Any, Callable, List, Optional, TextIO, Tuple

MAX_MINUTES = 180  # 1-second data lives 3 hours
MAX_BACKOFF = 300.0
_RELATIVE = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_DASHBOARD_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def _number(low: float, high: float, what: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError("%r is not a number of %s" % (text, what))
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError("%s must be between %g and %g, got %s" % (what, low, high, text))
        return value
    return parse


def parse_since(text: str, now: float) -> float:
    """`--since`: a relative duration (15m, 90s, 1h30m), a local clock time as the screen shows
    it (03:40, 03:40:15: the latest such moment not in the future) or an ISO time
    (2026-11-26T03:40:00Z; without a zone: UTC). ValueError else.

    >>> parse_since("15m", 10000.0), parse_since("1h30m", 10000.0)
    (9100.0, 4600.0)
    """
    text = text.strip()
    match = _RELATIVE.match(text)
    if match and any(match.groups()):
        hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
        return now - (hours * 3600 + minutes * 60 + seconds)
    match = _CLOCK.match(text)
    if match:
        hour, minute, second = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
        if hour > 23 or minute > 59 or second > 59:
            raise ValueError("%r is not a clock time" % text)
        day = datetime.datetime.fromtimestamp(now).replace(hour=hour, minute=minute, second=second, microsecond=0)
        ts = day.timestamp()  # naive: local time, like the clock on the screen
        return ts - 86400 if ts > now else ts
    try:
        stamp = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("--since %r: give a duration (15m, 1h), a clock time (03:40) or an ISO time "
                         "(2026-11-26T03:40:00Z), or `fis` for the newest FIS experiment" % text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return stamp.timestamp()


def add_fleet_parser(subparsers: Any) -> argparse.ArgumentParser:
    from fiswatch.aws.cli import add_session_options

    parser = subparsers.add_parser(
        "fleet", help="the instructor's view: every host's probes, read back from CloudWatch",
        description="Show every host that published fiswatch metrics (fiswatch watch --cloudwatch) in the "
                    "last --minutes: one row per host, one column per probe (writing, STALLED for N s, "
                    "erroring, silent), and the room's totals: probes stalled and never recovered, median "
                    "and worst write gap since --since. Read-only, except --dashboard.")
    parser.add_argument("--minutes", type=_number(1, MAX_MINUTES, "minutes"), default=60.0, metavar="N",
                        help="hosts that published in the last N minutes (default 60, at most 180)")
    parser.add_argument("--since", metavar="WHEN", default=None,
                        help="start of the gap/stall statistics: 15m, 1h (ago), 03:40 (local time), an ISO time, or "
                             "`fis` for the newest FIS experiment (default: the start of the window)")
    parser.add_argument("--refresh", type=_number(2, 3600, "seconds"), default=10.0, metavar="S",
                        help="read CloudWatch every S seconds (default 10; each read costs, see "
                             "docs/aws-workshop.md)")
    parser.add_argument("--silent-after", type=_number(2, 3600, "seconds"), default=30.0, metavar="S",
                        help="a probe with no metric for S seconds shows as silent (default 30)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--plain", action="store_true", help="print the room as text every --refresh seconds")
    output.add_argument("--json", action="store_true", help="one `fleet` JSON event per read (docs/events.md)")
    output.add_argument("--dashboard", metavar="NAME", default=None,
                        help="create or update CloudWatch dashboard NAME for the room, print its URL and exit")
    parser.add_argument("--once", action="store_true", help="read once, print (--plain/--json) and exit")
    add_session_options(parser)
    return parser


def run_fleet(args: argparse.Namespace, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    from fiswatch.aws.session import AwsError, client, explain, make_session

    if args.dashboard is not None and not _DASHBOARD_NAME.match(args.dashboard):
        err.write("fiswatch fleet: error: dashboard name %r: use 1-255 letters, digits, - and _\n" % args.dashboard)
        return 2
    now = time.time()
    since, label = None, ""
    if args.since and args.since.strip().lower() != "fis":
        try:
            since, label = parse_since(args.since, now), args.since.strip()
        except ValueError as exc:
            err.write("fiswatch fleet: error: %s\n" % exc)
            return 2
        if since > now or now - since > MAX_MINUTES * 60:
            err.write("fiswatch fleet: error: --since %s is not within the last 3 hours (CloudWatch keeps "
                      "1-second data 3 hours)\n" % args.since)
            return 2
    try:
        session = make_session(getattr(args, "profile", None), getattr(args, "region", None))
        cw = client(session, "cloudwatch")
        if args.dashboard is not None:
            return _dashboard(session, cw, args.dashboard, out, err)
        if args.since and args.since.strip().lower() == "fis":
            from fiswatch.aws.fleet_data import experiment_start

            found = experiment_start(session, client)
            if found is None:
                err.write("fiswatch fleet: no FIS experiment started in the last 3 hours; statistics start "
                          "at the window start\n")
            else:
                since, label = found
    except AwsError as exc:
        err.write("fiswatch fleet: %s\n" % exc)
        return 1
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        err.write("fiswatch fleet: %s\n" % explain(exc))
        return 1
    from fiswatch.aws.fleet_data import FleetSource

    source = FleetSource(cw, args.minutes, since, label, silent_after=args.silent_after)
    poller = Poller(source, args.refresh)
    fleet, problem = poller.once()
    if fleet is None:  # the first read failed: a configuration problem, say it and stop
        err.write("fiswatch fleet: %s\n" % problem)
        return 1
    try:
        if args.json or args.plain or args.once or _plain_wanted(out):
            return _print_loop(poller, fleet, args, out, err)
        return _screen(poller, fleet, err)
    except KeyboardInterrupt:
        return 0


class Poller:
    """Reads through a FleetSource, turning AWS failures into one line and throttling into back-off."""

    def __init__(self, source: Any, refresh: float) -> None:
        self.source = source
        self.refresh = refresh
        self.delay = refresh  # seconds until the next read

    def once(self) -> Tuple[Any, Optional[str]]:
        from fiswatch.aws.fleet_data import is_throttle
        from fiswatch.aws.session import explain

        try:
            fleet = self.source.fetch()
        except Exception as exc:  # noqa: BLE001 - every AWS failure is one line
            if is_throttle(exc):
                self.delay = min(MAX_BACKOFF, self.delay * 2)
                return None, ("CloudWatch is throttling the fleet's reads: backing off, next read in %ds"
                              % int(self.delay))
            self.delay = self.refresh
            return None, explain(exc)
        self.delay = self.refresh
        return fleet, None


def _plain_wanted(out: TextIO) -> bool:
    from fiswatch.output.plain import plain_wanted

    return plain_wanted(out)


def _print_loop(poller: Poller, fleet: Any, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import shutil

    from fiswatch.aws.fleet_view import fleet_changes, fleet_event, plain_lines
    from fiswatch import events as E
    from fiswatch.output.record import event_line  # the JSON lines of --json and --record: NaN -> null

    width = max(60, shutil.get_terminal_size((80, 24)).columns)
    previous = None
    while True:
        if fleet is not None:
            now = fleet.ts  # as of the read: ages, gaps and `ts` agree
            if args.json:
                events = fleet_changes(previous, fleet, now) + [fleet_event(fleet, now)]
                out.write("".join(event_line(e) for e in events))
                previous = fleet
            else:
                out.write("\n".join(plain_lines(fleet, width, now)) + "\n\n")
            out.flush()
        if args.once:
            return 0
        time.sleep(poller.delay)
        fleet, problem = poller.once()
        if problem is not None:
            if args.json:
                out.write(event_line({"ts": round(time.time(), 3), "event": E.WARNING, "message": "fleet: " + problem}))
                out.flush()
            else:
                err.write("fiswatch fleet: %s\n" % problem)
                err.flush()


def _screen(poller: Poller, first: Any, err: TextIO) -> int:
    from fiswatch.aws.fleet_screen import run_fleet_screen
    from fiswatch.ui.shell import DashboardUnavailable

    latest: List[Any] = [first]
    stop = threading.Event()

    def fetching() -> None:
        while not stop.wait(poller.delay):
            fleet, problem = poller.once()
            if fleet is not None:
                latest[0] = fleet  # one reference swap: the screen reads a frozen Fleet
            elif problem is not None:
                latest[0] = replace(latest[0], notes=(problem,))

    thread = threading.Thread(target=fetching, name="fiswatch-fleet-fetch", daemon=True)
    thread.start()
    try:
        how = run_fleet_screen(lambda: latest[0], stop)
    except DashboardUnavailable as exc:
        err.write("fiswatch fleet: %s\n" % exc)
        return 1
    finally:
        stop.set()
    return 1 if how == "lost" else 0


def _dashboard(session: Any, cw: Any, name: str, out: TextIO, err: TextIO) -> int:
    from fiswatch.aws.fleet_dashboard import DEFAULT_COLUMNS, console_url, dashboard_body, put_dashboard
    from fiswatch.aws.fleet_data import FleetSource
    from fiswatch.aws.fleet_model import column_order

    keys = FleetSource(cw, MAX_MINUTES).list_keys()
    columns = column_order(k.probe for k in keys) or DEFAULT_COLUMNS
    region = session.region_name
    created, messages = put_dashboard(cw, name, dashboard_body(region, columns))
    out.write("%s CloudWatch dashboard %s (%s): %s\n" % ("created" if created else "updated", name,
                                                        ", ".join(columns), console_url(region, name)))
    for message in messages:
        err.write("fiswatch fleet: dashboard %s: %s\n" % (name, message))
    return 0
