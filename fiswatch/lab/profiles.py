"""The timings of the lab's Aurora and RDS failovers: each profile's promotion, DNS flip and rejoin (pure, frozen).

lab/failover.py runs them; the stale-DNS option and every name and address stay in lab/layout.py.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    """Seconds after the start at which each step happens (a step never runs early)."""

    name: str
    promote_at: float  # writer fenced until then
    flip_at: float  # DNS answers the new writer from then on
    empty_for: float  # DNS answers empty/NXDOMAIN for this long before the flip
    flap_for: float  # after the flip, answers old or new per query for this long (dnsserver.Zone.pick)
    rejoin_at: float  # the old writer is back as a read-only reader


PROFILES = {
    # fast (the demo's default): promotion 1 s after the fence, the cluster endpoint's DNS 9 s later,
    # so a topology-aware client (at promotion), a DNS-following one (at the flip) and one without a
    # read timeout (never) are plainly apart; quick: no lag between promotion and DNS (tests)
    ("aurora", "fast"): Profile("fast", promote_at=1.0, flip_at=10.0, empty_for=1.0, flap_for=0.0, rejoin_at=10.5),
    ("aurora", "quick"): Profile("quick", promote_at=1.0, flip_at=2.0, empty_for=1.0, flap_for=0.0, rejoin_at=2.5),
    ("aurora", "realistic"): Profile("realistic", promote_at=8.0, flip_at=15.0, empty_for=3.0, flap_for=20.0,
                                     rejoin_at=20.0),
    ("rds", "fast"): Profile("fast", promote_at=1.5, flip_at=2.5, empty_for=0.0, flap_for=0.0, rejoin_at=3.0),
    ("rds", "quick"): Profile("quick", promote_at=1.5, flip_at=2.5, empty_for=0.0, flap_for=0.0, rejoin_at=3.0),
    ("rds", "realistic"): Profile("realistic", promote_at=20.0, flip_at=30.0, empty_for=0.0, flap_for=0.0,
                                  rejoin_at=45.0),
}
