"""`fiswatch lab up | status | failover aurora|rds | crash | reboot | down | exec`."""
import argparse
import json
import sys
from typing import Any, List, Optional

from fiswatch.lab.sigterm import sigterm_interrupts


def add_lab_parser(subparsers: Any) -> None:
    """Register the `lab` sub-command on an argparse subparsers object."""
    from fiswatch.lab.layout import default_lab_dir

    lab = subparsers.add_parser(
        "lab", help="run a local failover lab (MariaDB, DNS, fault proxies) on loopback",
        description="A local stand-in for the workshop's Aurora cluster and RDS Multi-AZ instance: "
                    "real MariaDB servers with replication, an RDS-shaped DNS server and fault-injecting "
                    "proxies, all on 127.0.0.0/8.")
    lab.set_defaults(func=run_lab, lab_command=None)
    actions = lab.add_subparsers(dest="lab_command", metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dir", default=None, metavar="DIR",
                       help="lab directory (default: %s)" % default_lab_dir())

    up = actions.add_parser("up", help="start the lab in the background; returns when it is ready")
    common(up)
    up.add_argument("--base", default="127.0.10", metavar="A.B.C",
                    help="loopback prefix: proxies on A.B.C.1-4, servers on A.B.C.101-104, DNS on A.B.C.53 "
                         "(default: 127.0.10)")
    up.add_argument("--port", type=int, default=3306, help="port of the proxies and servers (default: 3306)")
    up.add_argument("--dns-port", type=int, default=5300, help="UDP/TCP port of the DNS server (default: 5300)")
    up.add_argument("--buffer-pool", default="16M", metavar="SIZE",
                    help="InnoDB buffer pool per server (default: 16M)")
    up.add_argument("--require-tls", action="store_true",
                    help="refuse clients that do not use TLS with error 3159, as require_secure_transport=ON does "
                         "(default: TLS offered, plaintext allowed, as on AWS)")
    up.add_argument("--tls-expired", action="store_true",
                    help="issue the instances' certificates already expired (what rds-ca-2019's expiry looked like)")
    up.add_argument("--stale-dns", type=stale_dns_arg(), default=0.0, metavar="SECONDS",
                    help="every Aurora failover of this lab keeps the cluster name on the old writer for SECONDS "
                         "after it rejoined read-only (the demoted-writer trap; default: 0, a clean flip)")
    up.add_argument("--writer-grace", type=float, default=10.0, metavar="SECONDS",
                    help="a writer/primary whose mariadbd died outside the lab's control and is not back after "
                         "this long is failed over by the lab itself, as on AWS; 0: never (default: 10)")
    up.add_argument("--readers", type=int, default=1, metavar="N",
                    help="Aurora readers, 1..3 (default: 1); aurora-ro answers a random one per query")
    up.add_argument("--multi-az-cluster", action="store_true",
                    help="also run a Multi-AZ DB cluster (writer, two readable standbys, semi-sync): "
                         "endpoints maz and maz-ro")
    up.add_argument("--proxy", action="store_true",
                    help="add an RDS Proxy in front of Aurora: endpoint aurora-proxy (docs/rdsproxy.md)")
    up.add_argument("--blue-green", action="store_true", help="add a Blue/Green deployment's green environment "
                    "(green aurora writer + reader, green rds), for `lab switchover` (docs/lab.md)")
    up.add_argument("--json", action="store_true", help="print the lab's status as JSON once it is up")

    status = actions.add_parser("status", help="show endpoints, instances and their roles")
    common(status)
    status.add_argument("--json", action="store_true",
                        help="print JSON: DNS server, endpoints, instances, credentials file")

    fo = actions.add_parser("failover", help="fail over the aurora cluster, the rds instance or the maz cluster")
    common(fo)
    fo.add_argument("target", choices=("aurora", "rds", "maz"),
                    help="what to fail over (maz: the Multi-AZ DB cluster of `lab up --multi-az-cluster`)")
    fo.add_argument("--profile", choices=("aws", "planned", "quick"), default=None,
                    help="maz only: aws (~35 s, --realistic), planned (~1 s, a minor version upgrade without lag; "
                         "the default) or quick (tests)")
    fo.add_argument("--lag", type=float, default=None, metavar="SECONDS",
                    help="maz only: the readers need this long to apply what they received (0..600); "
                         "the failover waits for them")
    fo.add_argument("--stale-reader", action="store_true",
                    help="maz only, a fault: the re-pointed reader's SHOW REPLICA STATUS keeps naming the old "
                         "writer (Source_Server_Id)")
    fo.add_argument("--realistic", action="store_true",
                    help="AWS-like timings: promotion after ~8 s, DNS flip after ~15 s, then the answer flaps "
                         "for ~20 s (default: fast: promotion after 1 s, DNS flip 9 s later)")
    fo.add_argument("--crash", action="store_true",
                    help="kill the writer without letting the reader catch up (acknowledged writes may be lost)")
    fo.add_argument("--dns-style", choices=("empty", "nxdomain"), default="empty",
                    help="how DNS answers during the flip: NOERROR with no address, or NXDOMAIN (default: empty)")
    fo.add_argument("--stale-dns", type=stale_dns_arg(), default=None, metavar="SECONDS",
                    help="aurora: the cluster name keeps answering the old writer (no empty window, no flap) until "
                         "SECONDS after it rejoined read-only, as a stale DNS cache does: clients that reconnect by "
                         "name get 1290 on writes (default: the lab's `lab up --stale-dns`, else 0)")
    fo.add_argument("--json", action="store_true", help="print each step as a JSON line (the `lab` event)")

    down = actions.add_parser("down", help="stop the lab: no process, port or lock is left")
    common(down)

    from fiswatch.lab.exec_cli import add_exec_parser

    add_exec_parser(actions, common)
    from fiswatch.lab.crash_cli import add_crash_parsers

    add_crash_parsers(actions, common)
    from fiswatch.lab.patch import add_patch_parser

    add_patch_parser(actions, common)
    from fiswatch.lab.switchover_cli import add_switchover_parser

    add_switchover_parser(actions, common)


def stale_dns_arg() -> Any:
    """argparse type for --stale-dns: the lab's own check, one usage line (exit 2) when wrong."""
    from fiswatch.config.checks import arg_type
    from fiswatch.lab.layout import check_stale_dns

    return arg_type(check_stale_dns, "seconds")


def _dir(args: argparse.Namespace) -> str:
    from fiswatch.lab.layout import default_lab_dir

    return getattr(args, "dir", None) or default_lab_dir()


def _print_status(info: Any, as_json: bool) -> None:
    from fiswatch.lab.outage_now import describe_outage, outage_now

    outage = outage_now(info.dir)  # a crash, reboot or patch running now (lab/outage_now.py)
    if as_json:
        print(json.dumps(dict(info.to_dict(), outage_in_progress=outage), indent=2, sort_keys=True))
        return
    print("lab in %s (daemon pid %d)" % (info.dir, info.pid))
    print("DNS server   %s port %d" % info.nameserver)
    for ep in info.endpoints:
        print("endpoint     %-7s %s:%d" % (ep.name, ep.host, ep.port))
    print("endpoint     %-7s %s:%d (%d reader%s)" % ("reader", info.reader_endpoint, info.endpoints[0].port,
                                                    info.readers, "" if info.readers == 1 else "s"))
    if info.maz_reader_endpoint:
        print("endpoint     %-7s %s:%d" % ("maz-ro", info.maz_reader_endpoint, info.endpoints[0].port))
    print("shapes       %s" % ", ".join({"aurora": "Aurora cluster", "rds": "RDS Multi-AZ instance",
                                        "maz": "Multi-AZ DB cluster"}.get(s, s) for s in info.shapes))
    for inst in info.instances:
        extra = "" if inst.proxy_mode == "pass" else " [proxy %s]" % inst.proxy_mode
        if not inst.running:
            extra += " [stopped]"
        if inst.server_id is not None:
            extra += " SERVER_ID %s" % inst.server_id
        print("instance     %-28s %-6s %-8s %s:%d%s" % (inst.name, inst.cluster, inst.role, inst.address,
                                                      inst.port, extra))
    print("host pattern %s (cluster_instance_host_pattern: ? = SERVER_ID)" % info.cluster_instance_host_pattern)
    if info.stale_dns:
        print("stale DNS    aurora failovers: the cluster name names the old writer until %gs after it rejoins "
              "(lab up --stale-dns)" % info.stale_dns)
    last = info.failover_status()
    if last:
        print("failover     %s" % describe_failover(last))
    if outage:
        print("outage       %s" % describe_outage(outage))
    if info.ca_file:
        print("TLS          %s; CA bundle %s%s" % ("required (3159 without)" if info.tls == "required" else "offered",
                                                  info.ca_file, " [certificates EXPIRED]" if info.tls_expired else ""))
    print("credentials  %s (user %s)" % (info.credentials_file, info.endpoints[0].user))
    print("log          %s" % info.log_file)


def describe_failover(last: dict) -> str:
    """One line: the last failover and how it ended (or where it is)."""
    import time

    when = time.strftime("%H:%M:%S", time.localtime(float(last.get("ts") or 0)))
    head = "last %s %s" % (last.get("target"), "(crash) " if last.get("crash") else "")
    state = last.get("state")
    if state == "completed":
        return "%scompleted at %s: %s" % (head, when, last.get("detail"))
    if state == "running":
        if not _alive(last.get("pid")):
            return ("%sSTOPPED HALFWAY at step %s (its process %s is gone): the next `fiswatch lab failover%s` "
                    "finishes or rolls it back first" % (head, last.get("step"), last.get("pid"),
                                                         " maz" if last.get("target") == "maz" else ""))
        return "%srunning (pid %s), at step %s since %s" % (head, last.get("pid"), last.get("step"), when)
    if state in ("rolled back", "finished"):
        return "%s%s at step %s (%s) at %s: %s" % (head, state, last.get("step"), last.get("reason"), when,
                                                    last.get("detail"))
    return "%s%s at step %s (%s): %s" % (head, state, last.get("step"), last.get("reason"), last.get("detail"))


def _alive(pid: Any) -> bool:
    import os

    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def run_lab(args: argparse.Namespace) -> int:
    """Run a parsed `lab` command. 0 ok, 1 failure, 2 usage."""
    from fiswatch.lab.api import (LabError, LabInterrupted, LabNotRunning, LabUsageError, failover, lab_down,
                                  lab_status, lab_up)

    command = getattr(args, "lab_command", None)
    if command is None:
        print("fiswatch lab: say what to do: up, status, failover aurora|rds|maz, crash aurora|rds, reboot NAME, down, "
              "or exec -- COMMAND",
              file=sys.stderr)
        return 2
    lab_dir = _dir(args)
    if command == "exec":
        from fiswatch.lab.exec_cli import run_exec

        return run_exec(args, lab_dir)
    if command in ("crash", "reboot"):
        from fiswatch.lab.crash_cli import run_crash_command

        return run_crash_command(args, lab_dir)
    if command == "switchover":
        from fiswatch.lab.switchover_cli import run_switchover_command

        return run_switchover_command(args, lab_dir)
    if command == "patch":
        from fiswatch.lab.patch_run import run_patch

        return run_patch(args, lab_dir)
    try:
        if command == "up":
            def starting(line: Optional[str]) -> None:
                print(line or "starting the lab in %s ..." % lab_dir, file=sys.stderr, flush=True)

            info = lab_up(lab_dir, base=args.base, port=args.port, dns_port=args.dns_port,
                          buffer_pool=args.buffer_pool, tls="required" if args.require_tls else "offered",
                          tls_expired=args.tls_expired, stale_dns=args.stale_dns, on_start=starting,
                          writer_grace=args.writer_grace, readers=args.readers,
                          multi_az_cluster=args.multi_az_cluster, rds_proxy=args.proxy, blue_green=args.blue_green)
            _print_status(info, args.json)
            return 0
        if command == "status":
            _print_status(lab_status(lab_dir), args.json)
            return 0
        if command == "down":
            try:
                lab_down(lab_dir, say=lambda line: print(line, file=sys.stderr, flush=True))
            except LabNotRunning:
                print("no lab runs in %s; nothing to stop" % lab_dir)
                return 0
            print("lab in %s stopped" % lab_dir)
            return 0
        if command == "failover":
            from fiswatch.lab.layout import LayoutError, stale_dns_for

            try:
                stale_dns_for(args.target, args.stale_dns, 0.0)
            except LayoutError as exc:
                print("fiswatch lab failover: %s" % exc, file=sys.stderr)
                return 2
            if args.json:
                def emit(event: Any) -> None:
                    print(json.dumps(event.as_dict(), sort_keys=True), flush=True)
                echo = None
            else:
                emit = None  # type: ignore[assignment]

                def echo(line: str) -> None:
                    print(line, flush=True)
            usage = _failover_usage(args, lab_dir)
            if usage:
                print("fiswatch lab failover: %s" % usage, file=sys.stderr)
                return 2
            with sigterm_interrupts():
                if args.target == "maz":
                    failover(lab_dir, "maz", emit=emit, echo=echo, profile=_maz_profile(args),
                             maz={"lag": args.lag or 0.0, "stale_reader": args.stale_reader})
                else:
                    failover(lab_dir, args.target, emit=emit, echo=echo,
                             profile="realistic" if args.realistic else "fast", crash=args.crash,
                             dns_style=args.dns_style, stale_dns=args.stale_dns)
            return 0
    except LabInterrupted as exc:
        print("fiswatch lab %s: %s" % (command, exc), file=sys.stderr)
        return 130
    except LabUsageError as exc:
        print("fiswatch lab %s: %s" % (command, exc), file=sys.stderr)
        return 2
    except LabError as exc:
        print("fiswatch lab %s: %s" % (command, exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fiswatch lab %s: interrupted; check `fiswatch lab status --dir %s`" % (command, lab_dir),
              file=sys.stderr)
        return 1
    print("fiswatch lab: unknown command %r" % command, file=sys.stderr)
    return 2


def _maz_profile(args: argparse.Namespace) -> str:
    return args.profile or ("aws" if args.realistic else "planned")


def _failover_usage(args: argparse.Namespace, lab_dir: str) -> str:
    """What is wrong with a `lab failover` command line ('' when nothing), checked before anything starts."""
    from fiswatch.lab.api import lab_status

    if args.target != "maz":
        given = [flag for flag, value in (("--profile", args.profile), ("--lag", args.lag),
                                          ("--stale-reader", args.stale_reader or None)) if value is not None]
        return "%s only applies to `lab failover maz`" % ", ".join(given) if given else ""
    if args.crash:
        return "--crash is not modelled for maz (RDS waits for both readers); use --lag to delay the promotion"
    from fiswatch.lab.failover import FailoverError
    from fiswatch.lab.failover_maz import check_options

    try:
        check_options(_maz_profile(args), args.lag or 0.0)
    except FailoverError as exc:
        return str(exc)
    if "maz" not in lab_status(lab_dir).shapes:
        return ("this lab has no Multi-AZ DB cluster: start one with `fiswatch lab up --multi-az-cluster` "
                "(after `fiswatch lab down --dir %s`)" % lab_dir)
    return ""


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="fiswatch")
    add_lab_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    if getattr(args, "command", None) != "lab":
        parser.print_usage(sys.stderr)
        return 2
    return run_lab(args)


if __name__ == "__main__":
    sys.exit(main())
