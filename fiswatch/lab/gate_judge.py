"""The gate's judging: each expectation and each scheduled failover of `fiswatch lab exec` against
the program's report (built from the wire by lab/wire/verdict.py), as (name, passed, message). Pure.

Used by lab/gate.py (which parses the options and runs the program); lab/gate_junit.py writes the
results as JUnit XML.
"""
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple


class Expectation(NamedTuple):
    text: str
    endpoint: Optional[str]
    key: str
    value: Optional[float]


class Scheduled(NamedTuple):
    target: str
    at: float
    kind: str = "failover"  # or crash (lab/crash.py), patch (lab/patch_run.py), switchover (lab/switchover.py)



def judge(expectations: Sequence[Expectation], report: Any, lost: Dict[str, Any],
          failovers: Sequence[Tuple[Scheduled, str]]) -> List[Tuple[str, bool, str]]:
    """(name, passed, message) per expectation and per failover. Pure."""
    from fiswatch.report.failover_table import failover_verdict

    results: List[Tuple[str, bool, str]] = []
    for s, why in failovers:
        results.append(("%s %s@%g" % (s.kind, s.target, s.at), not why, why or "ran"))
    for e in expectations:
        probes = [p for p in report.probes if e.endpoint in (None, p.endpoint)]
        if e.key == "lost":
            if lost.get("error"):
                results.append((e.text, False, "lost writes not verified: %s" % lost["error"]))
                continue
            ids = [t for t in lost.get("lost", ()) if e.endpoint is None or t[0].startswith(e.endpoint + "/")]
            results.append((e.text, len(ids) <= (e.value or 0), "%d lost%s" % (
                len(ids), (": " + ", ".join("%s id %s" % (t, i) for t, i in ids[:5])) if ids else "")))
            continue
        # a failover counts for the endpoint it failed over (report.model.failovers_for pairs it so)
        pairs = [(p, o) for p in probes for o in p.outages if o.failover.target == p.endpoint]
        unmeasured = not_measured(e, report, failovers)
        if unmeasured:  # a failover where the program never wrote proves nothing: not a pass
            results.append((e.text, False, "; ".join(unmeasured)))
            continue
        if not pairs:
            results.append((e.text, False, "no failover of %s was measured (no write of the program went through "
                            "the lab's proxies there)" % (e.endpoint or "any endpoint")))
            continue
        if e.key == "max-gap":
            worst = [(o.gap.duration if o.gap else None, p, o) for p, o in pairs]
            bad = [(d, p, o) for d, p, o in worst if d is None or d > (e.value or 0)]
            if bad:
                d, p, o = bad[0]
                results.append((e.text, False, "failover %d (%s): %s" % (
                    o.number, p.endpoint, "no write gap measured" if d is None else "gap %.1fs" % d)))
            else:
                results.append((e.text, True, "longest gap %.1fs" % max(d for d, _, _ in worst if d is not None)))
        elif e.key == "recovered":
            bad_lines: List[str] = []
            for p, o in pairs:
                cls, detail = failover_verdict(report, p, o.failover)
                if cls in ("hung", "on a demoted writer", "no gap") and o.gap is not None or cls in ("hung", "on a demoted writer"):
                    bad_lines.append("failover %d (%s): %s, %s" % (o.number, p.endpoint, cls, detail))
            results.append((e.text, not bad_lines, "; ".join(bad_lines) or "recovered after every failover"))
    return results


def not_measured(e: Expectation, report: Any, failovers: Sequence[Tuple[Scheduled, str]]) -> List[str]:
    """One line per failover in the expectation's scope on an endpoint the program never wrote to. Pure."""
    wrote = {p.endpoint for p in report.probes if p.acknowledged}
    out = []
    for s, why in failovers:
        if not why and e.endpoint in (None, s.target) and s.target not in wrote:
            out.append("%s %s@%g: not measured: no acknowledged write of the program went to %s through "
                       "the lab's proxies" % (s.kind, s.target, s.at, s.target))
    return out
