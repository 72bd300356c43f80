"""`fiswatch lab exec`'s command line: its parser and its runner (lab/cli.py registers both).

Apart from lab/exec.py (running COMMAND in the lab's namespace) because the runner goes through
lab/gate.py (the failover schedule and the verdict), which itself calls exec_in_lab.
"""
import argparse
import signal
from typing import Any, Callable

from fiswatch.exits import EXIT_USAGE
from fiswatch.lab.exec import ENV_NAMES, say


def add_exec_parser(actions: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = actions.add_parser(
        "exec", help="run your own program against the lab: the system resolver answers the lab's names",
        usage="fiswatch lab exec [--dir DIR] [--aws] [--failover ENDPOINT@S] [--crash ENDPOINT@S] "
              "[--patch aurora@S] [--expect EXP] [--junit FILE] [--json FILE] [--record FILE] -- COMMAND [ARGS...]",
        epilog="examples: fiswatch lab exec -- mysql -u fiswatch -h "
               "fiswatch-lab.cluster-c0ffee0c0ffe.lab-1.rds.amazonaws.com testdb; "
               "fiswatch lab exec --aws -- python3 workshop_script.py (docs/lab.md)",
        description="Run COMMAND so that its system resolver answers the lab's names from the lab's DNS server "
                    "(a private mount namespace with its own /etc/resolv.conf; needs root or unprivileged user "
                    "namespaces, Linux only). The lab's endpoints and credentials are in its environment: "
                    + ", ".join(ENV_NAMES) + ". Exit code: COMMAND's; 128+N if signal N killed it; 125 if "
                    "lab exec could not run it; 126 not executable; 127 not found.")
    common(p)
    p.add_argument("--aws", action="store_true",
                   help="also serve the workshop's AWS side locally (Secrets Manager FisAuroraSecret and "
                        "FisMysqlSecret, CloudWatch) through moto on loopback, as AWS_ENDPOINT_URL with fake "
                        "credentials (needs `pip install 'fiswatch[lab-aws]'`)")
    from fiswatch.lab.gate import add_gate_options

    add_gate_options(p)  # failover schedule, expectations, verdict files (lab/gate.py)
    p.add_argument("exec_argv", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS...]",
                   help="the program to run and its arguments")


def run_exec(args: argparse.Namespace, lab_dir: str) -> int:
    argv = list(args.exec_argv or ())
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        say("say which program to run: fiswatch lab exec [--dir DIR] [--aws] -- COMMAND [ARGS...]")
        return EXIT_USAGE
    from fiswatch.lab.gate import run_gate

    try:
        return run_gate(args, lab_dir, argv, say)
    except KeyboardInterrupt:
        say("interrupted before %s started" % argv[0])
        return 128 + signal.SIGINT
