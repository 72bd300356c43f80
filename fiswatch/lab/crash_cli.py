"""`fiswatch lab crash aurora|rds [--kind K] [--down S]` and `fiswatch lab reboot NAME [--failover] [--down S]`.

The argument parsers and the command line's outcome; the work is lab/crash.py's. Exit codes: 0 done,
1 the outage failed midway (the instance was brought back), 2 a request that cannot run (unknown
instance, another failover/crash/reboot running, a bad --down), 130 interrupted.
"""
import argparse
import json
import sys
from typing import Any, Callable, Optional


def add_crash_parsers(actions: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    from fiswatch.lab.crash import CRASH_DOWN, CRASH_KINDS, REBOOT_DOWN

    crash = actions.add_parser(
        "crash", help="crash the writer of aurora or rds: it restarts in place, no failover, no DNS change",
        description="The writer's engine dies (its sessions are reset, connects refused) and restarts after "
                    "--down seconds, as Aurora's ALTER SYSTEM CRASH does; the same statement sent by a client "
                    "to the lab's Aurora endpoints does the same (docs/lab.md).")
    common(crash)
    crash.add_argument("target", help="aurora (the cluster's writer) or rds (the primary)")
    crash.add_argument("--kind", default="instance", help="%s (default: instance; dispatcher keeps the engine "
                       "running and only drops sessions)" % "|".join(CRASH_KINDS))
    crash.add_argument("--down", default=CRASH_DOWN, metavar="SECONDS",
                       help="how long it stays down (default: %g)" % CRASH_DOWN)
    crash.add_argument("--json", action="store_true", help="print each step as a JSON line (the `lab` event)")
    reboot = actions.add_parser(
        "reboot", help="reboot one instance in place (readers keep serving), or with --failover",
        description="The instance shuts down (its sessions closed, connects refused) and starts again after "
                    "--down seconds; DNS does not change. --failover: reboot with failover, as FIS's "
                    "aws:rds:reboot-db-instances with forceFailover (the writer/primary only).")
    common(reboot)
    reboot.add_argument("name", help="the instance (see `fiswatch lab status`)")
    reboot.add_argument("--failover", action="store_true", help="fail the cluster over instead of waiting for it")
    reboot.add_argument("--down", default=REBOOT_DOWN, metavar="SECONDS",
                        help="how long it refuses connects (default: %g, the lab's assumption)" % REBOOT_DOWN)
    reboot.add_argument("--json", action="store_true", help="print each step as a JSON line (the `lab` event)")


def run_crash_command(args: argparse.Namespace, lab_dir: str) -> int:
    from fiswatch.lab.api import LabError, lab_status
    from fiswatch.lab.crash import CrashError, run_crash, run_reboot

    command = args.lab_command

    def as_json(event: Any) -> None:
        print(json.dumps(event.as_dict(), sort_keys=True), flush=True)

    def as_line(line: str) -> None:
        print(line, flush=True)

    sink: Optional[Callable[[Any], None]] = as_json if args.json else None
    echo: Optional[Callable[[str], None]] = None if args.json else as_line
    from fiswatch.lab.sigterm import sigterm_interrupts

    try:
        lab_status(lab_dir)  # one line when no lab runs there
        with sigterm_interrupts():  # SIGTERM as Ctrl-C: the instance is brought back before the command ends
            if command == "crash":
                run_crash(lab_dir, args.target, args.kind, args.down, sink=sink, echo=echo)
            else:
                run_reboot(lab_dir, args.name, args.failover, args.down, sink=sink, echo=echo)
    except CrashError as exc:
        print("fiswatch lab %s: %s" % (command, exc), file=sys.stderr)
        return 2 if exc.usage else 1
    except LabError as exc:
        print("fiswatch lab %s: %s" % (command, exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fiswatch lab %s: interrupted; check `fiswatch lab status --dir %s`" % (command, lab_dir),
              file=sys.stderr)
        return 130
    return 0


__all__ = ["add_crash_parsers", "run_crash_command"]
