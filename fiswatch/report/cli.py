"""`fiswatch report FILE` (and the parsers of `report` and `verify`): read a run record back.

Exit codes: 0 ok, 1 lost writes found (verify), 2 bad usage, unreadable record, or an
endpoint that could not be checked.
"""
import argparse
import json
import os
import sys
from typing import Any, List, Optional

from fiswatch.exits import EXIT_OK
from fiswatch.report.load import add_run_argument, fail, read
from fiswatch.report.verify_cli import add_verify_parser, run_verify  # noqa: F401 (cli.PLUGGED)


def add_report_parsers(subparsers: Any) -> None:
    """Register `report` and `verify` on the main parser's sub-parsers."""
    rep = subparsers.add_parser(
        "report", help="summarise a recorded run: write gaps, stalls, DNS flip, outage",
        description="Summarise a run recorded with --record (fiswatch demo records by default): per probe the "
                    "write gaps, stall windows, errors by kind, addresses before/after, the DNS flip and, for a "
                    "lab run, each driver's downtime beyond the injected outage.")
    rep.add_argument("file", metavar="FILE", help="the record (JSON lines)")
    rep.add_argument("--format", choices=("text", "json", "markdown"), default="text", help="output format")
    rep.add_argument("--plot", metavar="OUT.png", help="also draw the timeline into OUT.png (needs fiswatch[plot])")
    add_run_argument(rep)
    rep.set_defaults(handler=run_report)

    add_verify_parser(subparsers)


def run_report(args: argparse.Namespace) -> int:
    from fiswatch.report.build import build_report
    from fiswatch.report.digest import digest
    from fiswatch.report.render_json import report_as_dict
    from fiswatch.report.render_markdown import render_markdown
    from fiswatch.report.render_text import render_text

    run = getattr(args, "run", None)
    found, note, error = read("report", args.file, lambda events: digest(events, run), run)
    if error:
        return fail("report", error)
    notes = [note] if note else []
    if run is not None:
        notes.append("run %d of the %d runs in %s" % (run, found.runs, args.file))
    report = build_report(found, notes=notes, record_path=args.file)
    fmt = getattr(args, "format", "text") or "text"
    if fmt == "json":
        out = json.dumps(report_as_dict(report), indent=2) + "\n"
    elif fmt == "markdown":
        out = render_markdown(report)
    else:
        out = render_text(report)
    sys.stdout.write(out)
    plot = getattr(args, "plot", None)
    if plot:
        from fiswatch.report.plot import PlotUnavailable, plot_report

        try:
            series = {name: list(zip(c.tick_ts, c.tick_ops)) for name, c in found.probes.items()}
            plot_report((), plot, report=report, title="fiswatch run %s" % os.path.basename(args.file),
                        series=series)
            sys.stderr.write("fiswatch report: timeline written to %s\n" % plot)
        except PlotUnavailable as exc:
            sys.stderr.write("fiswatch report: %s\n" % exc)  # the text report is still there
        except OSError as exc:
            return fail("report", "cannot write the plot to %s: %s" % (plot, exc.strerror or exc))
    return EXIT_OK


def main(argv: Optional[List[str]] = None) -> int:
    """`python -m fiswatch.report.cli report|verify ...` (the same as `fiswatch report|verify`)."""
    parser = argparse.ArgumentParser(prog="fiswatch")
    add_report_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
