"""What the AWS Advanced Python Wrapper keeps for the whole process, and how fiswatch lives with it.

- its logger: its failover warnings would be printed across the dashboard (`quiet_logging`);
- its topology monitors: threads that retry a host that is gone forever (`release_at_exit`);
- its topology cache and monitors, keyed by `cluster_id`: two endpoints (or two labs one after the
  other in one process, as a test worker runs them) that share a key share one topology, and a
  connection then takes the other one's writer for a reader (`wrapper_cluster_id`).
"""
import hashlib
from typing import Any


def wrapper_cluster_id(endpoint: Any) -> str:
    """The wrapper's cluster_id for an endpoint: its name, and a digest of where it is (host, port,
    source: a lab's directory, a secret's id), so that no other endpoint, and no other lab, shares it.

    >>> from fiswatch.model import Endpoint
    >>> a = Endpoint("aurora", "db.cluster-x.lab-1.rds.amazonaws.com", source="lab:/tmp/a")
    >>> b = Endpoint("aurora", "db.cluster-x.lab-1.rds.amazonaws.com", source="lab:/tmp/b")
    >>> wrapper_cluster_id(a).startswith("fiswatch-aurora-"), wrapper_cluster_id(a) == wrapper_cluster_id(a)
    (True, True)
    >>> wrapper_cluster_id(a) != wrapper_cluster_id(b)
    True
    """
    where = "%s:%s|%s" % (getattr(endpoint, "host", ""), getattr(endpoint, "port", ""), getattr(endpoint, "source", ""))
    return "fiswatch-%s-%s" % (getattr(endpoint, "name", "db"), hashlib.sha256(where.encode()).hexdigest()[:12])


def quiet_logging() -> None:
    """The wrapper logs its failovers as warnings; unhandled, Python prints them on stderr,
    across the dashboard. fiswatch shows them itself (the `failover` event)."""
    import logging

    log = logging.getLogger("aws_advanced_python_wrapper")
    if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
        log.addHandler(logging.NullHandler())
    log.propagate = False


_RELEASE: list = []
RELEASE_BUDGET = 5.0  # seconds the end of the process may spend stopping the wrapper's monitors


def release_at_exit(driver: Any) -> None:
    """Stop the wrapper's topology monitors when the process ends.

    Its monitors run host threads in a ThreadPoolExecutor, which Python joins at exit;
    they retry a host that is gone forever, so the process would never end. Registered
    after the wrapper imported concurrent.futures, this runs before that join (threading's
    exit hooks run newest first), in a daemon thread bounded by RELEASE_BUDGET.
    """
    if _RELEASE:
        return
    import threading

    def release() -> None:
        worker = threading.Thread(target=_release_quietly, args=(driver,), name="aws-wrapper release", daemon=True)
        worker.start()
        worker.join(RELEASE_BUDGET)

    _RELEASE.append(release)
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(release)
    else:  # pragma: no cover - every Python the wrapper supports has it
        import atexit

        atexit.register(release)


def _release_quietly(driver: Any) -> None:
    try:
        driver.release_resources()
    except Exception:  # noqa: BLE001
        pass
