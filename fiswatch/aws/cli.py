"""AWS options for `watch` / `create-db`, and the `experiment` subcommand.

Nothing here imports boto3 at import time: parsers are built without it, and a session
is made only when an option actually asks for AWS.
"""
import argparse
import sys
import time
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple

from fiswatch.aws.secrets import WORKSHOP_SECRETS
from fiswatch.config.checks import DAY, seconds_arg
from fiswatch.model import Endpoint

TARGETS = ("aurora", "rds")
FOLLOW_TIMEOUT = 600  # seconds `experiment start --wait` follows a run by default


def secret_pair(text: str) -> Tuple[str, str]:
    """argparse type for `NAME=SECRET_ID`."""
    name, sep, secret_id = text.partition("=")
    name, secret_id = name.strip(), secret_id.strip()
    if not sep or not name or not secret_id:
        raise argparse.ArgumentTypeError("expected NAME=SECRET_ID (e.g. aurora=FisAuroraSecret), got %r" % text)
    if not all(c.isalnum() or c in "-_" for c in name):
        raise argparse.ArgumentTypeError("endpoint name %r: use letters, digits, - and _ only" % name)
    return name, secret_id


def add_session_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", metavar="NAME", default=None,
                        help="AWS profile from ~/.aws/config (default: the standard chain: environment, "
                             "AWS_PROFILE, instance role)")
    parser.add_argument("--region", metavar="REGION", default=None,
                        help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION, the profile, or the "
                             "EC2 instance's own region)")


def _cloudwatch_host(text: str) -> str:
    from fiswatch.aws.cloudwatch import host_arg

    return host_arg(text)


def add_aws_options(parser: argparse.ArgumentParser) -> None:
    """Options for `watch` and `create-db`."""
    group = parser.add_argument_group("AWS")
    group.add_argument("--secret", metavar="NAME=SECRET_ID", action="append", type=secret_pair, default=[],
                       help="add endpoint NAME from a Secrets Manager secret in RDS JSON form (username, "
                            "password, host, port, dbname); repeatable")
    group.add_argument("--workshop", action="store_true",
                       help="the FIS workshop's databases: --secret aurora=FisAuroraSecret "
                            "--secret rds=FisMysqlSecret")
    group.add_argument("--cluster-id", metavar="[NAME=]ID", action="append", default=[],
                       help="Aurora cluster behind endpoint NAME (default NAME: aurora, else the first "
                            "endpoint); else taken from the secret or found by host name")
    group.add_argument("--instance-id", metavar="[NAME=]ID", action="append", default=[],
                       help="RDS instance behind endpoint NAME (default NAME: rds, else the first "
                            "endpoint); else taken from the secret or found by host name")
    group.add_argument("--experiment", choices=TARGETS, default=None,
                       help="show the state of the workshop's FIS experiment for aurora or rds; a key "
                            "starts a run after a confirmation")
    group.add_argument("--cloudwatch", action="store_true",
                       help="publish metrics every second to CloudWatch namespace fisworkshop (the "
                            "workshop's *_interactions_per_second plus per-probe metrics)")
    group.add_argument("--cloudwatch-host", metavar="NAME", default=None, type=_cloudwatch_host,
                       help="with --cloudwatch: the host dimension, the row name in `fiswatch fleet` (default: "
                            "$FISWATCH_CLOUDWATCH_HOST, else the EC2 instance id, else the host name)")
    group.add_argument("--no-topology", dest="topology", action="store_false", default=True,
                       help="do not poll RDS for the writer/reader AZs shown in the headers of endpoints "
                            "from secrets (on by default)")
    add_session_options(group)  # type: ignore[arg-type]


@dataclass(frozen=True)
class AwsOptions:
    """The AWS group (fiswatch.aws.cli.add_aws_options), read once; same names as the flags' dests."""

    secret: Tuple[Tuple[str, str], ...] = ()
    workshop: bool = False
    cluster_id: Tuple[str, ...] = ()
    instance_id: Tuple[str, ...] = ()
    experiment: Optional[str] = None
    cloudwatch: bool = False
    cloudwatch_host: Optional[str] = None
    topology: bool = True
    profile: Optional[str] = None
    region: Optional[str] = None

    @classmethod
    def from_args(cls, args: Any) -> "AwsOptions":
        """From a namespace that may lack the group (then its defaults)."""
        get = vars(args).get
        return cls(secret=tuple((str(name), str(ident)) for name, ident in (get("secret") or ())),
                   workshop=bool(get("workshop")), cluster_id=tuple(get("cluster_id") or ()),
                   instance_id=tuple(get("instance_id") or ()), experiment=get("experiment"),
                   cloudwatch=bool(get("cloudwatch")), cloudwatch_host=get("cloudwatch_host"),
                   topology=get("topology", True) is not False, profile=get("profile"), region=get("region"))

    def wanted(self) -> bool:
        """Does any flag ask for an AWS source during the run (topology, FIS, CloudWatch)?"""
        return bool(self.experiment or self.cloudwatch or self.secret or self.workshop
                    or self.cluster_id or self.instance_id)


def secret_pairs(options: AwsOptions) -> List[Tuple[str, str]]:
    """--secret pairs plus the workshop's two when --workshop; an explicit NAME wins."""
    pairs: List[Tuple[str, str]] = list(options.secret)
    if options.workshop:
        names = {name for name, _ in pairs}
        pairs += [pair for pair in WORKSHOP_SECRETS if pair[0] not in names]
    seen: Dict[str, str] = {}
    for name, secret_id in pairs:
        if name in seen and seen[name] != secret_id:
            from fiswatch.aws.session import AwsError

            raise AwsError("endpoint %s is given twice (secrets %s and %s): use distinct names"
                           % (name, seen[name], secret_id))
        seen[name] = secret_id
    return [(name, seen[name]) for name in dict.fromkeys(name for name, _ in pairs)]


def session_from_args(options: Any) -> Any:
    """A boto3 session from --profile / --region (AwsOptions, or the parsed `experiment`
    options); AwsError with one line on failure."""
    from fiswatch.aws.session import make_session

    return make_session(options.profile, options.region)


def _assign_ids(values: Sequence[str], names: Sequence[str], default: str, flag: str) -> Dict[str, str]:
    from fiswatch.aws.session import AwsError

    out: Dict[str, str] = {}
    for value in values:
        name, sep, ident = value.partition("=")
        if not sep:
            name, ident = "", value
        name, ident = name.strip(), ident.strip()
        if not ident:
            raise AwsError("%s %r: expected ID or NAME=ID" % (flag, value))
        if not name:
            if not names:
                raise AwsError("%s %s: no endpoint to attach it to; add --secret or --workshop" % (flag, ident))
            name = default if default in names else names[0]
        elif names and name not in names:
            raise AwsError("%s %s: no endpoint named %s (endpoints: %s)" % (flag, value, name, ", ".join(names)))
        out[name] = ident
    return out


def topology_ids(options: AwsOptions, names: Sequence[str]) -> Tuple[Dict[str, str], Dict[str, str]]:
    """(cluster_ids, instance_ids) by endpoint name from --cluster-id / --instance-id."""
    clusters = _assign_ids(options.cluster_id, names, "aurora", "--cluster-id")
    instances = _assign_ids(options.instance_id, names, "rds", "--instance-id")
    return clusters, instances


def endpoints_from_args(args: AwsOptions, session: Any = None) -> List[Endpoint]:
    """Endpoints from --secret / --workshop (empty list when neither is given).

    --cluster-id / --instance-id are folded into the endpoints' cluster_id / instance_id.
    Raises fiswatch.aws.session.AwsError (one line) on any AWS or secret problem.
    """
    pairs = secret_pairs(args)
    if not pairs:
        return []
    from fiswatch.aws.secrets import endpoints_from_secrets

    session = session if session is not None else session_from_args(args)
    endpoints = endpoints_from_secrets(pairs, session)
    clusters, instances = topology_ids(args, [e.name for e in endpoints])
    out = []
    for endpoint in endpoints:
        if endpoint.name in clusters:
            endpoint = replace(endpoint, cluster_id=clusters[endpoint.name], instance_id=None)
        elif endpoint.name in instances:
            endpoint = replace(endpoint, instance_id=instances[endpoint.name], cluster_id=None)
        out.append(endpoint)
    return out


# ---------------------------------------------------------------- fiswatch experiment

def add_experiment_parser(subparsers: Any) -> argparse.ArgumentParser:
    """`fiswatch experiment create|start|status`."""
    parser = subparsers.add_parser(
        "experiment", help="create, start and follow the workshop's FIS experiments",
        description="Create the FIS workshop's experiment templates (FisWorkshopAurora1, FisWorkshopRds1), "
                    "start runs and read their state.")
    actions = parser.add_subparsers(dest="experiment_action", metavar="create|start|status")
    actions.required = True

    create = actions.add_parser("create", help="create the workshop's template (reused if it exists)",
                                description="Create the workshop's FIS template for aurora or rds; an "
                                            "existing template with the same Name tag is reused.")
    create.add_argument("target", choices=TARGETS, help="aurora: failover the Aurora cluster; rds: reboot "
                                                        "the Multi-AZ instance with failover")
    create.add_argument("--cluster-id", metavar="ID", default=None,
                        help="Aurora cluster to target (default: from secret FisAuroraSecret)")
    create.add_argument("--instance-id", metavar="ID", default=None,
                        help="RDS instance to target (default: from secret FisMysqlSecret)")
    create.add_argument("--secret", metavar="SECRET_ID", default=None,
                        help="secret to find the target in when no id is given (default: the workshop's)")
    create.add_argument("--role-arn", metavar="ARN", default=None,
                        help="FIS execution role (default: the ARN of IAM role FisWorkshopServiceRole)")
    add_session_options(create)

    start = actions.add_parser("start", help="start a run, tagged like the workshop (FisWorkshopAurora1Run1...)",
                               description="Start a run of the workshop's template; the run is tagged "
                                           "Name=<template>Run<N>, numbered on from earlier runs.")
    start.add_argument("target", choices=TARGETS, help="which workshop template to run")
    start.add_argument("--wait", action="store_true",
                       help="follow the run and print each state until it ends (exit 1 if it fails)")
    start.add_argument("--timeout", type=seconds_arg(0.0, DAY, low_ok=False), default=None, metavar="S",
                       help="with --wait: give up following after S seconds, above 0 (default %d)" % FOLLOW_TIMEOUT)
    add_session_options(start)

    status = actions.add_parser("status", help="state of an experiment", description="Print an experiment's "
                                "state (pending, initiating, running, completed, stopped, failed) and reason.")
    status.add_argument("experiment_id", metavar="ID", help="experiment id (EXP...)")
    add_session_options(status)
    return parser


def run_experiment(args: argparse.Namespace, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    """0 ok, 1 AWS failure (one line on stderr), 2 usage."""
    out = out or sys.stdout
    err = err or sys.stderr
    action = getattr(args, "experiment_action", None)
    if action not in ("create", "start", "status"):
        err.write("fiswatch experiment: choose create, start or status\n")
        return 2
    if action == "start" and getattr(args, "timeout", None) is not None and not args.wait:
        # checked before anything starts: a run must never start on a command that is then refused
        err.write("fiswatch experiment: error: --timeout only applies with --wait (add --wait, or drop "
                  "--timeout)\n")
        return 2
    from fiswatch.aws import fis
    from fiswatch.aws.session import AwsError, explain

    try:
        session = session_from_args(args)
        if action == "create":
            template_id, created = fis.ensure_template(session, args.target, cluster_id=args.cluster_id,
                                                       instance_id=args.instance_id, role_arn=args.role_arn,
                                                       secret_id=args.secret)
            spec = fis.spec_for(args.target)
            verb = "created" if created else "reused existing"
            out.write("%s FIS template %s (Name=%s)\n" % (verb, template_id, spec.name))
            return 0
        if action == "start":
            experiment_id = fis.start_experiment(session, args.target)
            out.write("started experiment %s (%s)\n" % (experiment_id, args.target))
            out.flush()
            if args.wait:
                timeout = FOLLOW_TIMEOUT if args.timeout is None else args.timeout
                return _follow(session, experiment_id, timeout, out, err)
            return 0
        state, reason = fis.experiment_status(session, args.experiment_id)
        out.write("%s %s%s\n" % (args.experiment_id, state, (" - " + reason) if reason else ""))
        return 1 if state == "failed" else 0
    except AwsError as exc:
        err.write("fiswatch: %s\n" % exc)
        return 1
    except KeyboardInterrupt:
        err.write("fiswatch: interrupted\n")
        return 1
    except Exception as exc:  # noqa: BLE001 - never a traceback on the user's screen
        err.write("fiswatch: %s\n" % explain(exc))
        return 1


def _follow(session: Any, experiment_id: str, timeout: float, out: TextIO, err: TextIO,
            interval: float = 2.0) -> int:
    from fiswatch.aws import fis

    deadline = time.monotonic() + timeout
    last = None
    while True:
        state, reason = fis.experiment_status(session, experiment_id)
        if state != last:
            out.write("%s %s%s\n" % (experiment_id, state, (" - " + reason) if reason else ""))
            out.flush()
            last = state
        if state in fis.TERMINAL_STATES:
            if state == "failed":
                err.write("fiswatch: experiment %s failed: %s; see the FIS console for details\n"
                          % (experiment_id, reason or "no reason given"))
                return 1
            return 0
        if time.monotonic() > deadline:
            err.write("fiswatch: experiment %s still %s after %.0fs; check later with "
                      "`fiswatch experiment status %s`\n" % (experiment_id, state, timeout, experiment_id))
            return 1
        time.sleep(interval)
