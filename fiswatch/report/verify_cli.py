"""`fiswatch verify FILE`: where a record's endpoints are now, and the check of its writes.

Exit codes: 0 ok, 1 lost writes found, 2 bad usage, unreadable record, or an endpoint that
could not be checked.
"""
import argparse
import json
import os
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from fiswatch import events as E
from fiswatch.exits import EXIT_LOST, EXIT_OK, EXIT_USAGE
from fiswatch.report.load import fail, read


def add_verify_parser(subparsers: Any) -> None:
    """Register `verify` on the main parser's sub-parsers."""
    from fiswatch.config.checks import HOUR, seconds_arg

    ver = subparsers.add_parser(
        "verify", help="check that no acknowledged write of a recorded run was lost",
        description="Connect to each endpoint's current writer and check every acknowledged write of the "
                    "record (missing or changed = lost), and resolve writes whose COMMIT outcome was unknown. "
                    "Connection facts come from the record (no password is ever recorded: give it with "
                    "FISWATCH_PASSWORD_<NAME> or MYSQL_PWD, or type it at the prompt).")
    ver.add_argument("file", metavar="FILE", help="the record (JSON lines)")
    ver.add_argument("--endpoint", action="append", default=[], metavar="NAME=mysql://USER@HOST[:PORT]/DB",
                     help="where endpoint NAME's writer is now (overrides the record; repeatable)")
    ver.add_argument("--lab", nargs="?", const="", default=None, metavar="DIR",
                     help="take the connection facts from the local lab (default lab dir if no DIR)")
    ver.add_argument("--nameserver", metavar="IP[:PORT]", help="resolve endpoint names through this DNS server")
    ver.add_argument("--table", metavar="NAME", help="table name when the record does not say (default test)")
    from fiswatch.config.options import add_tls_args

    add_tls_args(ver)
    ver.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    ver.add_argument("--timeout", type=seconds_arg(0.0, HOUR, low_ok=False), default=10.0, metavar="S",
                     help="connect and read timeout per endpoint, seconds above 0 (default 10)")
    from fiswatch.report.load import add_run_argument

    add_run_argument(ver)
    ver.set_defaults(handler=run_verify)


def password_for(name: str) -> Optional[Any]:
    """The endpoint's password as a Secret (env FISWATCH_PASSWORD_<NAME>, MYSQL_PWD, TTY prompt)."""
    from fiswatch.config.checks import password_for as config_password_for

    return config_password_for(name)


def endpoints_from_record(events: Sequence[Mapping[str, Any]], table: Optional[str] = None) -> Dict[str, Any]:
    """name -> Endpoint (no password) from the record's run_start `endpoints` URLs."""
    from fiswatch.config.checks import ConfigError, parse_endpoint

    out = {}
    for ev in events:
        if ev.get("event") != E.RUN_START:
            continue
        listed = ev.get("endpoints")
        for item in listed if isinstance(listed, list) else ():
            if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not isinstance(
                    item.get("url"), str):
                continue
            try:
                out[str(item["name"])] = parse_endpoint(
                    "%s=%s" % (item["name"], item["url"]), table=str(item.get("table") or table or "test"))
            except ConfigError:
                continue  # an override or --lab can still provide it
        break
    return out


def make_connect(endpoints: Mapping[str, Any], nameserver: Optional[Tuple[str, int]] = None,
                 timeout: float = 10.0, tls: Any = None) -> Callable[[str], Any]:
    """A `connect(endpoint_name)` for verify(): PyMySQL to the endpoint's current writer.

    Each `Endpoint` needs its password filled in. Host names are resolved through
    `nameserver` when one is given (the lab's DNS), else by the system as usual.
    Timeouts bound everything: verify never hangs on a dead writer.
    """

    def connect(name: str) -> Any:
        import pymysql

        endpoint = endpoints.get(name)
        if endpoint is None:
            raise LookupError("no connection facts for endpoint %s: give --endpoint %s=mysql://USER@HOST/DB"
                              % (name, name))
        host = endpoint.host
        if nameserver is not None:
            from fiswatch.engine.resolve import Resolver, is_ip

            if not is_ip(host):
                answer = Resolver(nameserver=nameserver, timeout=min(timeout, 3.0)).resolve(host)
                if not answer.addresses:
                    raise LookupError("%s does not resolve (%s) through %s:%d"
                                      % (host, answer.error or "empty", nameserver[0], nameserver[1]))
                host = answer.addresses[0]
        password = endpoint.password.reveal() if endpoint.password is not None else ""
        extra = {}
        if tls is not None:  # --ssl-mode / --ssl-ca, as PyMySQL's options (fiswatch/backends/pymysql_backend.py)
            from fiswatch.backends.pymysql_backend import PyMySQLBackend

            extra = PyMySQLBackend(tls=tls).for_endpoint(endpoint).tls_kwargs(endpoint.host)  # type: ignore[attr-defined]
        return pymysql.connect(host=host, port=endpoint.port, user=endpoint.user, password=password,
                               database=endpoint.database, autocommit=True, connect_timeout=timeout,
                               read_timeout=timeout, write_timeout=timeout, **extra)

    return connect


def record_labs(events: Sequence[Mapping[str, Any]]) -> Dict[str, str]:
    """endpoint name -> the lab dir it came from (run_start `source` "lab:DIR"), for lab and demo runs."""
    out = {}
    for ev in events:
        if ev.get("event") != E.RUN_START:
            continue
        endpoints = ev.get("endpoints")
        for item in endpoints if isinstance(endpoints, list) else ():
            if isinstance(item, Mapping) and isinstance(item.get("name"), str) and isinstance(item.get("source"), str):
                if item["source"].startswith("lab:") and len(item["source"]) > 4:
                    out[item["name"]] = item["source"][4:]
        break
    return out


def record_endpoint_names(events: Sequence[Mapping[str, Any]], wanted: Sequence[str]) -> List[str]:
    names = set(wanted)
    for ev in events:
        if ev.get("event") == E.RUN_START:
            endpoints = ev.get("endpoints")
            names.update(item["name"] for item in (endpoints if isinstance(endpoints, list) else ())
                         if isinstance(item, Mapping) and isinstance(item.get("name"), str))
            break
    return sorted(names)


def _same_dir(a: str, b: str) -> bool:
    return os.path.realpath(os.path.expanduser(a)) == os.path.realpath(os.path.expanduser(b))


def lab_origin(events: Sequence[Mapping[str, Any]], wanted: Sequence[str], lab_arg: Optional[str],
               overridden: Sequence[str]) -> Tuple[Dict[str, Any], Optional[Tuple[str, int]]]:
    """Connection facts for the record's lab endpoints: from the lab the record names, found by itself.

    Raises LookupError (one line) when the record came from another lab than `--lab DIR`, or
    when the record's lab is not running any more.
    """
    from fiswatch.lab import api

    labs = {name: lab_dir for name, lab_dir in record_labs(events).items() if name in wanted and name not in overridden}
    if lab_arg is not None:
        chosen = lab_arg or api.default_lab_dir()
        for name, lab_dir in sorted(labs.items()):
            if not _same_dir(lab_dir, chosen):
                raise LookupError(
                    "refused: the record's endpoint %s came from the lab in %s, not the one in %s; checked against "
                    "another lab every write would look lost. Run `fiswatch verify FILE` without --lab (the record "
                    "names its lab) or with --lab %s" % (name, lab_dir, chosen, lab_dir))
        return _lab_endpoints(chosen)
    endpoints = {}  # type: Dict[str, Any]
    nameserver = None  # type: Optional[Tuple[str, int]]
    for lab_dir in sorted(set(labs.values())):
        found, nameserver = _lab_endpoints(lab_dir, record=True)
        endpoints.update({name: ep for name, ep in found.items() if labs.get(name) == lab_dir})
    return endpoints, nameserver


def _lab_endpoints(lab_dir: str, record: bool = False) -> Tuple[Dict[str, Any], Optional[Tuple[str, int]]]:
    from fiswatch.lab import api

    try:
        info = api.lab_status(lab_dir or api.default_lab_dir())
    except api.LabNotRunning:
        if record:
            raise LookupError("the record came from the lab in %s, which is not running now: its databases went "
                              "with it (a new `fiswatch lab up` starts with empty tables), so its writes cannot be "
                              "checked any more" % lab_dir)
        raise LookupError("lab: no lab runs in %s: start one with `fiswatch lab up --dir %s`" % (lab_dir, lab_dir))
    except Exception as exc:  # noqa: BLE001 - LabError: one line
        raise LookupError("lab: %s" % (" ".join(str(exc).split()) or exc.__class__.__name__))
    endpoints = getattr(info, "endpoints", ())
    if isinstance(endpoints, Mapping):
        endpoints = list(endpoints.values())
    nameserver = getattr(info, "nameserver", None)
    return {e.name: e for e in endpoints}, (tuple(nameserver) if nameserver else None)


def run_verify(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from fiswatch.config.checks import ConfigError, parse_endpoint
    from fiswatch.report.verify import render_verify, verify
    from fiswatch.report.writes import collect_writes

    table = getattr(args, "table", None)
    run = getattr(args, "run", None)
    record, note, error = read("verify", args.file, lambda evs: collect_writes(evs, run, table), run)
    if error:
        return fail("verify", error)
    if note:
        sys.stderr.write("fiswatch verify: %s\n" % note)
    events = record.head  # the run's run_start: where its endpoints were
    wanted = sorted(record.per)
    if not wanted:
        sys.stdout.write("verify: the record holds no writes to check\n")
        return EXIT_OK
    endpoints = endpoints_from_record(events, table)
    nameserver = None  # type: Optional[Tuple[str, int]]
    known = record_endpoint_names(events, wanted)
    try:
        overrides = [parse_endpoint(text) for text in getattr(args, "endpoint", None) or ()]
        for endpoint in overrides:
            if endpoint.name not in known:
                raise LookupError("--endpoint %s: the record has no endpoint named %s (it has %s); name the one to "
                                  "check" % (endpoint.name, endpoint.name, ", ".join(known) or "none"))
        lab_endpoints, nameserver = lab_origin(events, wanted, getattr(args, "lab", None),
                                               [e.name for e in overrides])
        endpoints.update(lab_endpoints)
        if getattr(args, "nameserver", None):
            from fiswatch.engine.resolve import parse_nameserver

            nameserver = parse_nameserver(args.nameserver)
        for endpoint in overrides:
            endpoints[endpoint.name] = endpoint
    except (ConfigError, ValueError, LookupError) as exc:
        return fail("verify", str(exc))
    missing = [name for name in wanted if name not in endpoints]
    if missing:
        return fail("verify", "the record does not say where endpoint %s is: give --endpoint %s=mysql://USER@HOST/DB"
                     % (missing[0], missing[0]))
    try:
        for name in wanted:
            if endpoints[name].password is None:
                secret = password_for(name)
                if secret is None:
                    from fiswatch.config.checks import password_env_name

                    return fail("verify", "no password for endpoint %s: set %s (or MYSQL_PWD), or run in a terminal "
                                 "to be asked" % (name, password_env_name(name)))
                endpoints[name] = replace(endpoints[name], password=secret)
    except ConfigError as exc:
        return fail("verify", str(exc))
    from fiswatch.backends.base import BackendOptionError
    from fiswatch.backends.pymysql_backend import PyMySQLBackend
    from fiswatch.config.options import tls_options

    tls = tls_options(args)
    try:
        for name in wanted:  # a verifying mode without a CA: one line before anything connects
            PyMySQLBackend(tls=tls).tls_for(endpoints[name])  # type: ignore[arg-type]
    except BackendOptionError as exc:
        return fail("verify", str(exc))
    result = verify(record, make_connect(endpoints, nameserver, timeout=float(getattr(args, "timeout", 10.0)),
                                         tls=tls))
    if getattr(args, "format", "text") == "json":
        sys.stdout.write(json.dumps(result.as_dict(), indent=2) + "\n")
    else:
        sys.stdout.write("\n".join(render_verify(result)) + "\n")
    if result.lost:
        return EXIT_LOST
    if result.failed:
        return EXIT_USAGE
    return EXIT_OK
