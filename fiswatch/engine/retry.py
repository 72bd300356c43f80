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
  endpoint that fails instantly (a refused port, an empty DNS answer) is not a hot loop;
- an endpoint failing for longer than `fast_for` (30 s, longer than the lab's failovers
  and most of Aurora's) is tried every `slow_pause` (0.5 s) instead: each attempt costs
  the driver real CPU (PyMySQL builds a TLS context for every connect, ~20 ms of CPU,
  so 20 attempts a second would take ~40 % of a core for as long as the endpoint is
  dead). A DNS change still ends the wait at once, so the flip that ends a long outage
  is not waited for; what the slow phase can add is under 0.5 s to an outage that has
  lasted 30 s already.

`RetryPolicy` is pure (times in, time out) so tests drive it with a fake clock.
"""
from dataclasses import dataclass
from typing import Optional

PAUSE = 0.05  # the workshop loop's pause between passes
MAX_RATE = 20.0  # attempts per second, at most
FAST_FOR = 30.0  # seconds of continuous failure tried at the workshop's pace
SLOW_PAUSE = 0.5  # the pause after that


@dataclass(frozen=True)
class RetryPolicy:
    pause: float = PAUSE
    max_rate: float = MAX_RATE
    fast_for: float = FAST_FOR
    slow_pause: float = SLOW_PAUSE

    @property
    def spacing(self) -> float:
        """The least time between the starts of two attempts."""
        return 1.0 / self.max_rate

    def next_attempt(self, last_start: Optional[float], failed_at: float, dns_changed: bool = False,
                     failing_since: Optional[float] = None) -> float:
        """Monotonic time at which the next attempt may start.

        `last_start`: when the last attempt started (None: never); `failed_at`: when it
        (or the round on its connection) failed; `dns_changed`: the DNS answer changed
        since that attempt started; `failing_since`: the first failure since the last
        completed round (None: this is it).

        >>> p = RetryPolicy()
        >>> p.next_attempt(10.0, 11.0)  # a 1 s hang, then the workshop's pause
        11.05
        >>> p.next_attempt(10.0, 11.0, dns_changed=True)  # the flip came meanwhile: at once
        11.0
        >>> p.next_attempt(10.0, 10.001, dns_changed=True)  # never more than 20 a second
        10.05
        >>> p.next_attempt(100.0, 101.0, failing_since=60.0)  # down for 41 s: twice a second
        101.5
        """
        pause = self.pause
        if failing_since is not None and failed_at - failing_since >= self.fast_for:
            pause = self.slow_pause
        at = failed_at if dns_changed else failed_at + pause
        if last_start is not None:
            at = max(at, last_start + self.spacing)
        return at

