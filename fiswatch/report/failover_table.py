"""When each client got its writes going again after a failover, next to the others. Pure.

The lesson in one table: for a failover the lab injected (fence, promotion, DNS change),
the probes of that endpoint side by side, each classed as
  hung                      no write after the fence until the run ended
  at promotion              writing again before the cluster name's DNS changed
                            (a topology-aware client: aws-wrapper)
  at the DNS change         writing again once the name pointed at the new writer (PyMySQL)
  on a demoted writer       no write since, and writes refused (1290/1836) after the promotion:
                            connections left on the old writer, now read-only (a wire client)
with its write gap. Used by the end-of-run summary and `fiswatch report`.
"""
from typing import Any, List, Optional, Sequence, Tuple

from fiswatch.ui.text import truncate

GAP = 2  # spaces between columns


def step_time(failover: Any, step: str) -> Optional[float]:
    for ts, name, _ in getattr(failover, "steps", ()):
        if name == step:
            return ts
    return None


def verdict(probe: Any, promote: Optional[float], flip: Optional[float]) -> Tuple[str, str]:
    """(class, detail) of one probe for one failover: ('at promotion', 'gap 1.3s') ...

    >>> from types import SimpleNamespace as N
    >>> gap = N(open=False, end=106.5, duration=1.3, from_start=False)
    >>> verdict(N(available=True, outage_gap=gap, longest_gap=gap), 105.0, 115.0)
    ('at promotion', 'gap 1.3s (DNS -8.5s)')
    >>> verdict(N(available=True, outage_gap=N(open=True, end=130.0, duration=25.0, from_start=False),
    ...           longest_gap=None), 105.0, 115.0)
    ('hung', 'no write for 25.0s')
    >>> verdict(N(available=True, outage_gap=N(open=True, end=130.0, duration=25.0, from_start=False),
    ...           longest_gap=None, refused_at=129.0), 105.0, 115.0)
    ('on a demoted writer', 'writes refused for 24.0s')
    """
    if not getattr(probe, "available", True):
        return "unavailable", ""
    gap = getattr(probe, "gap_for_failover", None) or probe.outage_gap or probe.longest_gap
    if gap is None:
        return "no gap", ""
    refused_at = getattr(probe, "refused_at", None)
    if gap.open and refused_at is not None and promote is not None and refused_at >= promote:
        return "on a demoted writer", "writes refused for %.1fs" % (refused_at - promote)
    if gap.open:
        return "hung", "no write for %.1fs" % gap.duration
    if flip is not None and gap.end < flip:
        return "at promotion" if promote is not None and gap.end >= promote else "before DNS", \
            "gap %.1fs (DNS -%.1fs)" % (gap.duration, flip - gap.end)
    if flip is not None:
        return "at the DNS change", "gap %.1fs (DNS +%.1fs)" % (gap.duration, gap.end - flip)
    return "recovered", "gap %.1fs" % gap.duration


def failover_verdict(report: Any, probe: Any, failover: Any) -> Tuple[str, str]:
    """(class, detail) of one probe (or wire client) for one of the report's failovers."""
    promote = step_time(failover, "promote")
    dns = report.dns_for(probe.endpoint)
    flip = step_time(failover, "dns_flip") or (dns.flip_at if dns is not None else None)
    return verdict(_for(probe, failover), promote, flip)


def comparison_lines(report: Any, width: int = 80, endpoint: str = "aurora") -> List[str]:
    """A header and the probes of `endpoint` side by side, for its last lab failover; [] if none.

    Only for endpoints with more than one probe: the point is the comparison.
    """
    probes = [p for p in report.probes if p.endpoint == endpoint]
    failover = report.failover_for(endpoint)
    if len(probes) < 2 or failover is None or failover.outage_start is None:
        return []
    promote = step_time(failover, "promote")
    dns = report.dns_for(endpoint)
    flip = step_time(failover, "dns_flip") or (dns.flip_at if dns is not None else None)
    head = "%s %s: fenced %s" % (endpoint.upper(), failover.kind, _t(report, failover.outage_start))
    if promote is not None:
        head += ", promoted %s" % _t(report, promote)
    if flip is not None:
        head += ", DNS changed %s" % _t(report, flip)
    cells = [(p.backend, ) + (verdict(_for(p, failover), promote, flip) if _paired(p, failover) else
                              ("started later", "not running then")) for p in probes]
    return [truncate(head, width)] + side_by_side(cells, width)


def _paired(probe: Any, failover: Any) -> bool:
    """Whether the report paired this failover with the probe (it ran then; see report.model.failovers_for)."""
    return any(o.failover is failover for o in getattr(probe, "outages", ()))


def _for(probe: Any, failover: Any) -> Any:
    """The probe with the write gap of this very failover (a run may have several)."""
    from types import SimpleNamespace

    pair = next((o for o in getattr(probe, "outages", ()) if o.failover is failover), None)
    if pair is None:
        return probe
    refused_at = getattr(probe, "refused_at", None)
    if pair.gap is None:
        return SimpleNamespace(available=probe.available, gap_for_failover=None, outage_gap=None, longest_gap=None,
                               refused_at=refused_at)
    return SimpleNamespace(available=probe.available, gap_for_failover=pair.gap, outage_gap=None, longest_gap=None,
                           refused_at=refused_at)


def side_by_side(cells: Sequence[Tuple[str, ...]], width: int) -> List[str]:
    """Columns of equal width, one per cell tuple, each row of a tuple on its own line.

    >>> side_by_side([("pymysql", "at the DNS change"), ("aws-wrapper", "at promotion")], 40)
    ['  pymysql             aws-wrapper', '  at the DNS change   at promotion']
    """
    if not cells:
        return []
    colw = max(8, (width - 2 - GAP * (len(cells) - 1)) // len(cells))
    rows = max(len(c) for c in cells)
    out = []
    for r in range(rows):
        parts = [truncate(c[r] if r < len(c) else "", colw).ljust(colw) for c in cells]
        out.append(("  " + (" " * GAP).join(parts)).rstrip())
    return out


def _t(report: Any, ts: Optional[float]) -> str:
    return "-" if ts is None else "t+%.1f" % (ts - report.start)
