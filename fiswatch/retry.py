"""When a failing probe tries again: the reconnect policy, in one place.

The number fiswatch reports is how long a driver could not write, so the probe must not
add waiting of its own. The workshop's scripts retry on every pass of their loop: after
an error they pause 50 ms and connect again. A probe does the same:

- after a failed attempt (a connect that failed, or a round that failed on a fresh or an
  old connection) it waits `pause` (50 ms), then resolves the name again and connects;
- a change in the endpoint's DNS answer (the DNS watcher sets each of the endpoint's
  probes' `wake` event: a signal, no data flows back through the monitor) ends that
  wait at once, and when the change came while an attempt was still hanging (RDS: a
  connect to the old, fenced address waits for its timeout), the next attempt starts
  right after that one fails, without the pause, and goes to the new address;
- attempts never start closer together than 1 / `max_rate` seconds (20 a second), so an
  endpoint that fails instantly (a refused port, an empty DNS answer) costs a bounded,
  small amount of CPU instead of a hot loop.

There is no growing backoff: a dead endpoint is tried 20 times a second for as long as
it stays dead, which is what the workshop's own loop does.
`RetryPolicy` is pure (times in, time out) so tests drive it with a fake clock.
"""
from dataclasses import dataclass
from typing import Optional

PAUSE = 0.05  # the workshop loop's pause between passes
MAX_RATE = 20.0  # attempts per second, at most


@dataclass(frozen=True)
class RetryPolicy:
    pause: float = PAUSE
    max_rate: float = MAX_RATE

    @property
    def spacing(self) -> float:
        """The least time between the starts of two attempts."""
        return 1.0 / self.max_rate

    def next_attempt(self, last_start: Optional[float], failed_at: float, dns_changed: bool = False) -> float:
        """Monotonic time at which the next attempt may start.

        `last_start`: when the last attempt started (None: never); `failed_at`: when it
        (or the round on its connection) failed; `dns_changed`: the DNS answer changed
        since that attempt started.

        >>> p = RetryPolicy()
        >>> p.next_attempt(10.0, 11.0)  # a 1 s hang, then the workshop's pause
        11.05
        >>> p.next_attempt(10.0, 11.0, dns_changed=True)  # the flip came meanwhile: at once
        11.0
        >>> p.next_attempt(10.0, 10.001, dns_changed=True)  # never more than 20 a second
        10.05
        """
        at = failed_at if dns_changed else failed_at + self.pause
        if last_start is not None:
            at = max(at, last_start + self.spacing)
        return at

