"""Verify a run's acknowledged writes automatically: after a lab failover and at the end of a run."""
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from fiswatch.model import Endpoint, Event

TIMEOUT = 5.0


def verify_events(result: Any, endpoint: Optional[str] = None) -> List[Event]:
    """One compact `verify` event per endpoint (ids of lost writes capped at 20)."""
    out = []
    for item in result.endpoints:
        if endpoint is not None and item.endpoint != endpoint:
            continue
        out.append(Event.make(
            "verify", endpoint=item.endpoint, ok=item.ok, acknowledged=item.acknowledged, lost=len(item.lost),
            changed=len(item.changed), in_doubt_committed=len(item.in_doubt_committed),
            in_doubt_not_committed=len(item.in_doubt_not_committed), lost_ids=list(item.lost_ids[:20]),
            error=item.error))
    return out


def verify_run(events: Iterable[Event], endpoints: Sequence[Endpoint], nameserver: Optional[Tuple[str, int]],
               only: Optional[str] = None) -> Tuple[Any, List[Event]]:
    """Check the writes among `events` (of endpoint `only`, or all) against each current writer."""
    from fiswatch.report_cli import make_connect
    from fiswatch.verify import verify

    dicts: List[Dict[str, Any]] = []
    for e in events:
        if only is not None and e.event in ("write", "write_in_doubt") and e.get("endpoint") != only:
            continue
        dicts.append(e.as_dict())
    connect = make_connect({e.name: e for e in endpoints}, nameserver, timeout=TIMEOUT)
    result = verify(dicts, connect)
    return result, verify_events(result, only)


def has_writes(events: Iterable[Event]) -> bool:
    return any(e.event in ("write", "write_in_doubt") for e in events)
