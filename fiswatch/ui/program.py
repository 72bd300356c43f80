"""The program measured from the lab's wire (`--exec`): its compact lines on the dashboard and in --plain. Pure.

A program is not a probe: fiswatch does not run it, it only reads what the lab's proxies saw it
do. So it gets a line of its own above the event log, one per endpoint it wrote to (merged into
one line when the terminal is short), instead of a probe's column of rows and sparkline:

  PROGRAM mysql on aurora  WRITING 12 ops/s  -> aurora-2  1234 acked
  PROGRAM mysql on aurora  NO WRITE 6s  -> aurora-1  1234 acked
  PROGRAM mysql on aurora  ERRORING 2013 6s  -> aurora-1  1234 acked
  PROGRAM app on aurora  REFUSED 1290 x37 (demoted writer)  -> aurora-1
  PROGRAM app  STARTING (no connection seen yet)
"""
from typing import List, Sequence, Tuple

from fiswatch.model import ProgramView
from fiswatch.ui.lines import Line, greedy

STYLE = {"writing": "ok", "silent": "stalled", "erroring": "error", "refused": "error", "starting": "warn"}


def state_label(p: ProgramView) -> str:
    """The state word(s), as a probe's state is shown.

    >>> state_label(ProgramView("m", "aurora", "writing", ops_per_s=12.0))
    'WRITING 12 ops/s'
    >>> state_label(ProgramView("m", "aurora", "erroring", error=2013, silent_for=6.4))
    'ERRORING 2013 6s'
    >>> state_label(ProgramView("m", "aurora", "refused", refused=37))
    'REFUSED 1290 x37 (demoted writer)'
    """
    if p.kind == "writing":
        return "WRITING %d ops/s" % round(p.ops_per_s)
    if p.kind == "silent":
        return "NO WRITE %ds" % p.silent_for
    if p.kind == "erroring":
        return "ERRORING %s %ds" % (p.error if p.error is not None else "(dropped)", p.silent_for)
    if p.kind == "refused":
        return "REFUSED 1290 x%d (demoted writer)" % p.refused
    return "STARTING (%s)" % p.text


def parts(p: ProgramView) -> List[Tuple[str, str]]:
    head = "PROGRAM %s%s  " % (p.name, " on %s" % p.endpoint if p.endpoint else "")
    out = [(head, "header"), (state_label(p), STYLE.get(p.kind, "normal"))]
    if p.instance:  # the instance it reached outranks the count when the width is short (greedy)
        out.append(("  -> %s" % p.instance, "dim"))
    if p.endpoint:
        out.append(("  %d acked" % p.acked, "normal"))
    return out


def program_text(p: ProgramView) -> str:
    """One program endpoint as plain text.

    >>> program_text(ProgramView("mysql", "aurora", "writing", ops_per_s=9.6, acked=120, instance="aurora-2"))
    'PROGRAM mysql on aurora  WRITING 10 ops/s  -> aurora-2  120 acked'
    """
    return "".join(t for t, _ in parts(p))


def program_lines(programs: Sequence[ProgramView], width: int, room: int) -> List[Line]:
    """At most `room` lines: one per program endpoint, or all of them on one line when short of room.

    >>> a = ProgramView("mysql", "aurora", "writing", ops_per_s=9, acked=12, instance="aurora-2")
    >>> b = ProgramView("mysql", "rds", "silent", silent_for=3, acked=5)
    >>> [l.text for l in program_lines([a, b], 80, 2)]
    ['PROGRAM mysql on aurora  WRITING 9 ops/s  -> aurora-2  12 acked', 'PROGRAM mysql on rds  NO WRITE 3s  5 acked']
    >>> [l.text for l in program_lines([a, b], 80, 1)]
    ['PROGRAM mysql  aurora WRITING 9 ops/s | rds NO WRITE 3s']
    """
    if room <= 0 or not programs:
        return []
    if len(programs) <= room:
        return [greedy(parts(p), width) for p in programs]
    names = sorted({p.name for p in programs})
    segs: List[Tuple[str, str]] = [("PROGRAM %s  " % ",".join(names), "header")]
    for i, p in enumerate(programs):
        if i:
            segs.append((" | ", "dim"))
        segs.append(("%s " % p.endpoint if p.endpoint else "", "normal"))
        segs.append((state_label(p), STYLE.get(p.kind, "normal")))  # states first: no instance here
    return [Line(tuple(s for s in segs if s[0])).clip(width)]
