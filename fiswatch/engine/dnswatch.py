"""Watch each endpoint's name about once a second and report when the answer changes.

This is how the DNS flip of a failover reaches the screen even when no probe reconnects:
the cluster endpoint's CNAME moving to another instance, or the answer going empty.
A read endpoint (`--read`; a reader endpoint answers a random reader per lookup) reports
only an address it never gave before: a reader or the writer newly in the set, not the pick.
A change also sets the `wakes` events (one per probe of the endpoint, wired by the
runner): a probe waiting to reconnect tries again at once (fiswatch.engine.retry).
"""
import threading
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Set, Tuple

from fiswatch import events as E
from fiswatch.model import Endpoint, Event, Resolution
from fiswatch.engine.resolve import Resolver


@dataclass(frozen=True)
class DnsAnswer:
    """What a watcher knows, published as one value: the newest resolution and the last
    non-empty answer before it (so a reader never sees one without the other)."""

    latest: Optional[Resolution] = None
    previous: Tuple[str, ...] = ()


class DnsWatcher:
    """A daemon thread per endpoint; the monitor reads `answer` (one frozen value, swapped whole)."""

    def __init__(self, endpoint: Endpoint, emit: Callable[[Event], None], nameserver=None,
                 interval: float = 1.0, wakes: Sequence[threading.Event] = ()) -> None:
        self.endpoint = endpoint
        self.wakes = tuple(wakes)
        self.emit = emit
        self.interval = interval
        self.resolver = Resolver(nameserver)
        self.answer = DnsAnswer()  # written by the watcher's thread only, read by the monitor's
        self.seen: Set[str] = set()  # every address the name gave (a read endpoint's change is a new one)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dns " + endpoint.name, daemon=True)

    def start(self) -> "DnsWatcher":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def poll(self) -> Resolution:
        """Resolve once, publish, and emit a `dns` event when the answer changed."""
        res = self.resolver.resolve(self.endpoint.host)
        old = self.answer.latest
        before = old.addresses if old is not None else ()
        # a read endpoint (a reader endpoint picks a reader per lookup): only an answer not seen before is news
        spread = self.endpoint.reads and old is not None and res.addresses and set(res.addresses) <= self.seen
        self.seen.update(res.addresses)
        previous = before if before and before != res.addresses and not spread else self.answer.previous
        self.answer = DnsAnswer(latest=res, previous=previous)
        if spread:
            return res
        if old is None or old.addresses != res.addresses or old.error != res.error or old.cname != res.cname:
            if old is not None:
                for wake in self.wakes:
                    wake.set()
            self.emit(E.dns(
                self.endpoint.name, self.endpoint.host, addresses=list(res.addresses),
                previous=list(before), cname=res.cname, ttl=res.ttl, error=res.error, source=res.source))
        return res

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            latest = self.answer.latest
            if latest is not None and latest.source == "literal":
                return  # an IP literal never changes
            self._stop.wait(self.interval)
