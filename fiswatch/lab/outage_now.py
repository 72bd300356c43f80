"""The crash, reboot or patch running in a lab right now, for `lab status` (and --json).

A failover tells the daemon its steps (`last_failover`); a crash, reboot or patch runs under the same
failover lock in the process that asked for it (`lab crash`, `lab exec`, the demo, the daemon itself for
`ALTER SYSTEM CRASH`). While it runs, that process keeps `outage.json` in the lab dir: kind, instance,
cluster, since (epoch seconds) and its pid. `lab status` shows the file while that pid lives; a file left
by a process that died midway is ignored (the next outage replaces it).
"""
import contextlib
import json
import os
import time
from typing import Any, Dict, Iterator, Optional

OUTAGE_FILE = "outage.json"
KINDS = ("crash", "reboot", "patch")


@contextlib.contextmanager
def outage_running(lab_dir: str, kind: str, instance: str, cluster: str, since: float) -> Iterator[None]:
    """Say in `lab_dir` that `kind` of `instance` runs since `since`, for as long as the block runs.
    Writing the file never fails the outage: a lab dir that cannot be written only loses the status line."""
    path = os.path.join(lab_dir, OUTAGE_FILE)
    record = {"kind": kind, "instance": instance, "cluster": cluster, "since": since, "pid": os.getpid()}
    try:
        tmp = "%s.%d.tmp" % (path, os.getpid())
        with open(tmp, "w") as fh:
            json.dump(record, fh)
        os.replace(tmp, path)
    except OSError:
        pass
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if outage_now(lab_dir) == record:
                os.unlink(path)


def outage_now(lab_dir: str) -> Optional[Dict[str, Any]]:
    """The outage running in `lab_dir` ({kind, instance, cluster, since, pid}) or None.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> with outage_running(d, "reboot", "aurora-instance-2", "aurora", 100.0):
    ...     outage_now(d)["kind"], outage_now(d)["instance"]
    ('reboot', 'aurora-instance-2')
    >>> outage_now(d) is None
    True
    """
    try:
        with open(os.path.join(lab_dir, OUTAGE_FILE)) as fh:
            record = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("kind") not in KINDS or not _alive(record.get("pid")):
        return None
    if not isinstance(record.get("since"), (int, float)) or not isinstance(record.get("instance"), str):
        return None
    return record


def describe_outage(record: Dict[str, Any], now: Optional[float] = None) -> str:
    """One line for `lab status`.

    >>> describe_outage({"kind": "crash", "instance": "aurora-instance-1", "cluster": "aurora", "since": 0.0,
    ...                  "pid": 7}, now=2.5).split(" since ")[0]
    'crash of aurora-instance-1 (aurora) running'
    """
    since = float(record["since"])
    return "%s of %s (%s) running since %s (%.0fs, pid %s)" % (
        record["kind"], record["instance"], record.get("cluster", "?"),
        time.strftime("%H:%M:%S", time.localtime(since)), max(0.0, (time.time() if now is None else now) - since),
        record.get("pid"))


def _alive(pid: Any) -> bool:
    try:
        if int(pid) <= 0:
            return False
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


__all__ = ["KINDS", "OUTAGE_FILE", "describe_outage", "outage_now", "outage_running"]
