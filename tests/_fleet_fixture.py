"""A fake room for the fleet view: per-second samples as `watch --cloudwatch` would publish them.

`fake_series(now, hosts)` builds the series dict fleet_model.build_fleet takes: every host
runs aurora and rds with mysql-connector and pymysql. Every third host's
aurora/mysql-connector stalls 100 s before `now` and never recovers; every aurora/pymysql
has a write gap of (2 + host % 5) seconds 90 s before `now` and recovers; the last host
stopped publishing 120 s before `now` (silent).
"""
from fiswatch.aws.fleet_model import ProbeSeries, SeriesKey, build_fleet

COLUMNS = ("aurora/mysql-connector", "aurora/pymysql", "rds/mysql-connector", "rds/pymysql")
START = 600.0  # seconds of history before now


def probe_samples(now, stall_at=None, gap_at=None, gap_len=0.0, end=None):
    """(state samples, write_gap samples) for one probe, one per second."""
    states, gaps = [], []
    end = now if end is None else end
    t = now - START
    while t <= end:
        if stall_at is not None and t >= stall_at:
            states.append((t, 1.0))
            gaps.append((t, t - stall_at + 0.05))
        elif gap_at is not None and gap_at <= t < gap_at + gap_len:
            states.append((t, 3.0))  # reconnecting
            gaps.append((t, t - gap_at + 0.05))
        else:
            states.append((t, 0.0))
            gaps.append((t, 0.05))
        t += 1.0
    return tuple(states), tuple(gaps)


def host_name(index):
    return "i-0%016x" % (0xabc000 + index)  # EC2 instance ids sort like the indexes


def fake_series(now, hosts=30, anchor=None):
    """The room as seen at `now`; stalls, gaps and the silence happen relative to `anchor`
    (default: now), so a read before them can be built too."""
    anchor = now if anchor is None else anchor
    series = {}
    for i in range(hosts):
        host = host_name(i)
        end = min(now, anchor - 120) if i == hosts - 1 else now
        for column in COLUMNS:
            endpoint, backend = column.split("/")
            key = SeriesKey(endpoint, backend, host, "20261126T030000-%04x" % i)
            if column == "aurora/mysql-connector" and i % 3 == 0:
                states, gaps = probe_samples(now, stall_at=anchor - 100, end=end)
            elif column == "aurora/pymysql":
                states, gaps = probe_samples(now, gap_at=anchor - 90, gap_len=2 + i % 5, end=end)
            else:
                states, gaps = probe_samples(now, end=end)
            series[key] = ProbeSeries(states, gaps)
    return series


def fake_fleet(now, hosts=30, since=None, anchor=None):
    since = now - 300 if since is None else since
    return build_fleet(fake_series(now, hosts, anchor), now, now - 3600, since, "5m")
