"""The option groups `watch` and `demo` share (endpoints, probes, output), their value parsers,
and the frozen records the parsed options become at the edge (`WatchOptions`, `EndpointOptions`;
the AWS group's `AwsOptions` lives with its flags in fiswatch.aws.cli):
the argparse namespace stops at the command's handler, nothing inward reads it.
"""
import argparse
from dataclasses import dataclass, field
from typing import Any, Optional, Tuple

from fiswatch.aws.cli import AwsOptions, add_aws_options
from fiswatch.config.checks import HOUR, WEEK, seconds_arg, table_arg
from fiswatch.exits import EXIT_INCOMPLETE


def add_endpoint_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("endpoints")
    g.add_argument("--endpoint", action="append", metavar="NAME=mysql://USER@HOST[:PORT]/DB", default=[],
                   help="a database to write to (repeatable); password from FISWATCH_PASSWORD_<NAME>, "
                        "MYSQL_PWD or a prompt, never from the URL")
    g.add_argument("--lab", nargs="?", const="", default=None, metavar="DIR",
                   help="take endpoints, credentials and the DNS server from a running local lab "
                        "(default dir: the one `fiswatch lab up` uses)")
    g.add_argument("--table", default="test", type=table_arg,
                   help="table to write to: letters, digits, _ or $ (default: %(default)s)")
    g.add_argument("--nameserver", metavar="IP[:PORT]",
                   help="resolve endpoint names with this DNS server instead of the system's")
    add_aws_options(p)


def add_probe_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("probes")
    g.add_argument("--backend", action="append", metavar="NAME[:OPT=VAL,...]",
                   help="connector backend to run against every endpoint (repeatable; default: mysql-connector "
                        "and pymysql), e.g. --backend mysql-connector:read_timeout=1; see `fiswatch backends`")
    g.add_argument("--interval", type=INTERVAL, default=0.05, metavar="SECONDS",
                   help="pause between rounds of INSERT/COMMIT/SELECT, 0 to 3600 (default: %(default)s)")
    g.add_argument("--stall-after", type=STALL_AFTER, default=2.0, metavar="SECONDS",
                   help="a driver call in flight longer than this shows as STALLED, 0.1 to 3600 "
                        "(default: %(default)s)")
    g.add_argument("--read", action="append", default=[], metavar="NAME",
                   help="endpoint NAME's probes read (SELECT the newest rows) instead of writing (repeatable); "
                        "with --lab or in the demo also aurora-ro, maz-ro or an instance (instance-3): docs/guide.md")
    g.add_argument("--connect-by-name", action="store_true",
                   help="let the driver resolve the host name itself (for TLS host checks); the address shown "
                        "is then fiswatch's own lookup; TLS verification by name needs no such thing")
    add_tls_args(p)


def add_tls_args(p: argparse.ArgumentParser) -> None:
    """--ssl-mode and --ssl-ca, one meaning for every backend (fiswatch/config/tls.py)."""
    from fiswatch.config.tls import CA_ARG, MODE_ARG, MODES

    g = p.add_argument_group("TLS")
    g.add_argument("--ssl-mode", type=MODE_ARG, default=None, metavar="MODE",
                   help="%s, as the mysql client names them (default: what each driver does by itself; "
                        "per backend: --backend NAME:ssl_mode=MODE)" % "|".join(MODES))
    g.add_argument("--ssl-ca", type=CA_ARG, default=None, metavar="FILE",
                   help="CA bundle (PEM) to verify the server's certificate; the lab's is taken by itself, on AWS "
                        "use the RDS global bundle; alone it means --ssl-mode VERIFY_CA")


def tls_options(args: argparse.Namespace) -> "object":
    """The TlsOptions of parsed --ssl-mode / --ssl-ca."""
    from fiswatch.config.tls import TlsOptions

    return TlsOptions(getattr(args, "ssl_mode", None), getattr(args, "ssl_ca", None))


def add_output_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("output")
    mode = g.add_mutually_exclusive_group()
    mode.add_argument("--plain", action="store_true",
                      help="the workshop's column text, reprinted every second (automatic when stdout is not a "
                           "terminal or TERM=dumb)")
    mode.add_argument("--json", action="store_true", help="one JSON object per line (see docs/events.md)")
    g.add_argument("--duration", type=DURATION, metavar="SECONDS",
                   help="end the run by itself after this long, above 0 (default: until q or Ctrl-C)")
    g.add_argument("--record", metavar="FILE",
                   help="write every event and acknowledged write to FILE (JSON lines); FILE must not exist yet")
    g.add_argument("--overwrite", action="store_true", help="let --record replace an existing FILE")
    g.add_argument("--no-color", action="store_true", help="no colours (also NO_COLOR=1)")
    g.add_argument("--no-verify", action="store_true",
                   help="skip checking, at the end, that every acknowledged write is on the current writer")


RUN_EPILOG = """\
exit codes: 0 the run ended (q, Ctrl-C, --duration, SIGTERM, the terminal closed); 1 a failure before
the run (one line); 2 bad usage; %d the run ended but its record or its output could not be written in
full (disk or quota full, `ulimit -f`): the end of the run says from when and what is missing.
""" % EXIT_INCOMPLETE


# The seconds options of watch and demo: one check (fiswatch.config.checks.check_seconds), these ranges.
INTERVAL = seconds_arg(0.0, HOUR)
STALL_AFTER = seconds_arg(0.1, HOUR, low_hint="below the monitor's 0.1 s tick ordinary calls would show as STALLED")
DURATION = seconds_arg(0.0, WEEK, low_ok=False,
                       low_hint="0 would end the run at once; leave --duration out to run until q")


@dataclass(frozen=True)
class EndpointOptions:
    """The endpoints group (add_endpoint_args), read once: where fiswatch.config.sources looks."""

    endpoint: Tuple[str, ...] = ()
    lab: Optional[str] = None
    table: str = "test"
    nameserver: Optional[str] = None
    aws: AwsOptions = field(default_factory=AwsOptions)

    @classmethod
    def from_args(cls, args: Any) -> "EndpointOptions":
        """From a namespace that may lack the group (demo: the lab's endpoints, then these defaults)."""
        get = vars(args).get
        return cls(endpoint=tuple(get("endpoint") or ()), lab=get("lab"), table=get("table") or "test",
                   nameserver=get("nameserver"), aws=AwsOptions.from_args(args))


@dataclass(frozen=True)
class WatchOptions:
    """Everything `watch` (and `demo`, through it) was asked for, read once from the command line.

    `demo` makes its own with `dataclasses.replace` (its record in the lab dir, its backends)
    instead of rewriting the parsed arguments.
    """

    endpoints: EndpointOptions = field(default_factory=EndpointOptions)
    backend: Optional[Tuple[str, ...]] = None
    interval: float = 0.05
    stall_after: float = 2.0
    connect_by_name: bool = False
    plain: bool = False
    json: bool = False
    duration: Optional[float] = None
    record: Optional[str] = None
    overwrite: bool = False
    no_color: bool = False
    no_verify: bool = False
    tls: Any = None  # fiswatch.config.tls.TlsOptions: --ssl-mode / --ssl-ca
    read: Tuple[str, ...] = ()  # --read NAME: endpoints whose probes read (fiswatch.config.reads)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "WatchOptions":
        """From the namespace of `watch` or `demo` (demo has no endpoint group: its defaults)."""
        get = vars(args).get
        backend = get("backend")
        return cls(endpoints=EndpointOptions.from_args(args), backend=tuple(backend) if backend else None, interval=args.interval,
                   stall_after=args.stall_after, connect_by_name=bool(args.connect_by_name), plain=bool(args.plain),
                   json=bool(args.json), duration=args.duration, record=args.record,
                   overwrite=bool(args.overwrite), no_color=bool(args.no_color), no_verify=bool(args.no_verify),
                   tls=tls_options(args), read=tuple(get("read") or ()))
