"""Where a command's endpoints come from: --endpoint, --lab, AWS (Secrets Manager, --workshop)."""
from typing import TYPE_CHECKING, Callable, List, Optional, Tuple

from fiswatch.config.checks import ConfigError, check_unique_names, parse_endpoint, with_password
from fiswatch.exits import CommandError, UsageError
from fiswatch.model import Endpoint

if TYPE_CHECKING:
    from fiswatch.config.options import EndpointOptions


def collect_endpoints(options: "EndpointOptions") -> Tuple[List[Endpoint], Optional[Tuple[str, int]]]:
    """Endpoints from --endpoint, --lab and AWS secrets; the DNS server to use."""
    from fiswatch.engine.resolve import parse_nameserver

    nameserver = None
    if options.nameserver:
        try:
            nameserver = parse_nameserver(options.nameserver)
        except ValueError as exc:
            raise UsageError(str(exc))
    endpoints: List[Endpoint] = []
    for text in options.endpoint:
        try:
            endpoints.append(with_password(parse_endpoint(text, options.table)))
        except ConfigError as exc:
            raise UsageError(str(exc))
    if options.lab is not None:
        info = lab_info(options.lab)
        endpoints.extend(_with_table(e, options.table) for e in info.endpoints)
        nameserver = nameserver or tuple(info.nameserver)
    from fiswatch.aws.cli import endpoints_from_args

    endpoints.extend(_with_table(e, options.table) for e in aws_call(endpoints_from_args, options.aws))
    try:
        check_unique_names(e.name for e in endpoints)
    except ConfigError as exc:
        raise UsageError(str(exc))
    if not endpoints:
        raise UsageError("no endpoint: give --endpoint NAME=mysql://USER@HOST/DB, --lab, or --workshop "
                         "(or run `fiswatch demo` for the local lab)")
    return endpoints, nameserver


def _with_table(endpoint: Endpoint, table: str) -> Endpoint:
    from dataclasses import replace

    return endpoint if endpoint.table == table else replace(endpoint, table=table)


def lab_info(lab_dir: str):
    from fiswatch.lab import api

    try:
        return api.lab_status(lab_dir or api.default_lab_dir())
    except (api.LabNotRunning, api.LabError) as exc:
        raise CommandError(str(exc))


def aws_call(func: Callable, *args):
    """Run an AWS call; its errors become one line (exit 1)."""
    from fiswatch.aws.session import AwsError

    try:
        return func(*args)
    except AwsError as exc:
        raise CommandError(str(exc))
