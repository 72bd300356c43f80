"""Verify a run's acknowledged writes automatically: after a lab failover and at the end of a run."""
from typing import Any, Dict, List, Optional, Sequence, Tuple

from fiswatch import events as E
from fiswatch.model import Endpoint, Event

TIMEOUT = 5.0


def verify_events(result: Any, endpoint: Optional[str] = None) -> List[Event]:
    """One compact `verify` event per endpoint (ids of lost writes capped at 20)."""
    out = []
    for item in result.endpoints:
        if endpoint is not None and item.endpoint != endpoint:
            continue
        out.append(E.verify(
            item.endpoint, ok=item.ok, acknowledged=item.acknowledged, lost=len(item.lost),
            changed=len(item.changed), in_doubt_committed=len(item.in_doubt_committed),
            in_doubt_not_committed=len(item.in_doubt_not_committed), lost_ids=list(item.lost_ids[:20]),
            error=item.error, server=item.server, warnings=list(item.warnings)))
    return out


def verify_record(path: str, endpoints: Sequence[Endpoint], nameserver: Optional[Tuple[str, int]],
                  only: Optional[Sequence[str]] = None) -> Tuple[Any, List[Event]]:
    """Check the writes of a record (to the endpoints `only`, or all) against each current writer.

    The record may still be growing: a half-written last line is skipped.
    """
    from fiswatch.output.record import read_record
    from fiswatch.report.verify_cli import make_connect
    from fiswatch.report.verify import verify

    def wanted(event: Dict[str, Any]) -> bool:
        return only is None or event.get("event") not in (E.WRITE, E.WRITE_IN_DOUBT) or event.get("endpoint") in only

    connect = make_connect({e.name: e for e in endpoints if only is None or e.name in only}, nameserver,
                           timeout=TIMEOUT)
    result = verify((e for e in read_record(path) if wanted(e)), connect)
    events: List[Event] = []
    names: List[Optional[str]] = list(only) if only else [None]
    for name in names:
        events.extend(verify_events(result, name))
    return result, events
