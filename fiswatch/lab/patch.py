"""Zero-downtime patching of the lab's Aurora writer: `fiswatch lab patch aurora [--no-zdp]`.

Aurora MySQL's ZDP (AUG AuroraMySQL.Updates.ZDP) restarts the engine while keeping client
connections: open transactions are rolled back, connections holding temporary tables or locks are
dropped, globals, `Uptime` and `LAST_INSERT_ID` start afresh; when ZDP cannot proceed it is a plain
restart. In the lab the RDS Proxy (`lab up --proxy`, lab/rdsproxy.py) is what keeps the sessions:
during the restart statements wait, afterwards each kept session gets a new server session with
its schema and session variables replayed. Connections by the cluster name are not kept (the lab's
limit: only the proxy owns sessions); `--no-zdp` drops the proxy's sessions too.

`patch_in_daemon` runs inside the lab daemon (its `patch` request); the command
(`run_patch`) is lab/patch_run.py's: it runs the patch as an outage (the failover lock, `lab` events with
outage = patch) and refuses a lab without its RDS Proxy.
"""
import time
from typing import Any, Callable, Dict

PATCH_TARGETS = ("aurora",)


def patch_in_daemon(lab: Any, target: str, zdp: bool, log: Callable[[str], None]) -> Dict[str, Any]:
    """Restart `target`'s writer engine (graceful shutdown, start as writer); what happened to the sessions."""
    from fiswatch.lab.mariadb import sql

    if target not in PATCH_TARGETS:
        raise ValueError("patch applies to %s only, not %r" % (", ".join(PATCH_TARGETS), target))
    running = lab.last_failover or {}
    if running.get("state") == "running":
        raise ValueError("a failover of %s is running: patch once it is done (`fiswatch lab status`)"
                         % running.get("target", "the lab"))
    writer = lab.role_holder(target, "writer")
    server = lab.servers[writer.name]
    if not server.alive():
        raise ValueError("%s is not running: nothing to patch (see `fiswatch lab status`)" % writer.name)
    proxy = lab.rds_proxy
    t0 = time.time()
    sessions = proxy.ploop.call(proxy.begin_patch, zdp) if proxy is not None else {}
    lab.intended_down.add(writer.name)  # not a dead writer for the watchdog
    try:
        server.stop(30.0)
        server.start(read_only=False)
        # an instance that started as a reader has --read-only on its command line: a writer again, as before
        sql(lab.layout.server_socket(writer), ["SET GLOBAL read_only=0"])
    finally:
        lab.intended_down.discard(writer.name)
        if proxy is not None:
            proxy.ploop.call(proxy.end_patch)
    seconds = time.time() - t0
    log("patch %s: %s engine restarted in %.1fs (%s); proxy sessions: %s" % (
        target, writer.name, seconds, "zero-downtime patching" if zdp else "ZDP could not proceed: a plain restart",
        ", ".join("%d %s" % (n, k) for k, n in sorted(sessions.items())) or "none"))
    return {"target": target, "instance": writer.name, "zdp": zdp, "seconds": round(seconds, 3),
            "proxy": proxy is not None, "sessions": sessions}


def add_patch_parser(actions: Any, common: Any) -> None:
    p = actions.add_parser("patch", help="zero-downtime patching: restart the Aurora writer's engine; the RDS "
                                         "Proxy (lab up --proxy) keeps client sessions (docs/rdsproxy.md)")
    common(p)
    p.add_argument("target", choices=PATCH_TARGETS, help="the cluster whose writer is patched")
    p.add_argument("--no-zdp", action="store_true",
                   help="ZDP could not proceed: a plain restart, every session is dropped")
    p.add_argument("--json", action="store_true", help="print the outcome as one JSON object")
