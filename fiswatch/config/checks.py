"""Endpoint specs and passwords from the command line and the environment.

`--endpoint NAME=mysql://USER@HOST[:PORT]/DB`. Passwords never come from the command line
(argv is visible to every user of the machine in `ps`): they come from
FISWATCH_PASSWORD_<NAME>, else MYSQL_PWD, else a prompt when stdin is a terminal.
"""
import getpass
import math
import os
import re
import sys
from typing import Any, Callable, Iterable, Mapping, Optional
from urllib.parse import unquote, urlsplit

from fiswatch.model import Endpoint, Secret

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
TABLE_NAME = re.compile(r"^[A-Za-z0-9_$]{1,64}$")
HOUR, DAY, WEEK = 3600.0, 86400.0, 604800.0
EXAMPLE = "--endpoint aurora=mysql://admin@mycluster.cluster-abc.us-east-1.rds.amazonaws.com:3306/testdb"


class ConfigError(ValueError):
    """Bad input from the user: str() is one line saying what and what to do."""


# -- numbers and names every command checks the same way ------------------------------------------------------
def check_seconds(text: Any, low: float = 0.0, high: float = HOUR, low_ok: bool = True,
                  low_hint: str = "") -> float:
    """A finite number of seconds from `low` (excluded unless low_ok) to `high`; ConfigError otherwise.

    The one check behind every seconds option (--interval, --stall-after, --duration, the
    --timeout options, backend timeouts): nan, inf and out-of-range values are refused, so
    a typo never silently turns a signal off or a run endless. `low_hint` says what a value
    at or below `low` would do.

    >>> check_seconds('1.5')
    1.5
    >>> check_seconds('nan')
    Traceback (most recent call last):
    ...
    fiswatch.config.checks.ConfigError: 'nan' is not a number of seconds: give a number from 0 to 3600
    """
    if low_ok:
        span = "from %s to %s" % (_num(low), _num(high))
    else:
        span = "above %s, at most %s" % (_num(low), _num(high))
    try:
        value = float(str(text).strip())
    except ValueError:
        value = math.nan
    if math.isnan(value) or math.isinf(value):
        raise ConfigError("%r is not a number of seconds: give a number %s" % (str(text), span))
    if value < low or (value == low and not low_ok):
        raise ConfigError("%s is too small: give a number of seconds %s%s"
                          % (str(text).strip(), span, (" (" + low_hint + ")") if low_hint else ""))
    if value > high:
        raise ConfigError("%s is too large: give a number of seconds %s" % (str(text).strip(), span))
    return value


def _num(value: float) -> str:
    return ("%d" % value) if value == int(value) else ("%g" % value)


def arg_type(check: Callable[[str], Any], name: str) -> Callable[[str], Any]:
    """An argparse `type=` from a check that raises ConfigError or ValueError: argparse names the
    option and turns the message into one usage line (exit 2)."""
    import argparse

    def parse(text: str) -> Any:
        try:
            return check(text)
        except (ConfigError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc))

    parse.__name__ = name
    return parse


def seconds_arg(low: float = 0.0, high: float = HOUR, low_ok: bool = True,
                low_hint: str = "") -> Callable[[str], float]:
    """An argparse `type=` for a seconds option, built on check_seconds."""
    return arg_type(lambda text: check_seconds(text, low, high, low_ok, low_hint), "seconds")


def check_port(value: Any) -> int:
    """A TCP/UDP port 1..65535 (0 and out-of-range refused); ConfigError otherwise.

    >>> check_port('3307')
    3307
    """
    try:
        if isinstance(value, bool):
            raise ValueError(value)
        port = int(value) if isinstance(value, int) or (isinstance(value, float) and value.is_integer()) \
            else int(str(value).strip())
    except (ValueError, OverflowError):
        raise ConfigError("port %r is not a number: give a port from 1 to 65535" % str(value))
    if not 0 < port < 65536:
        raise ConfigError("port %d is not a usable port: give a port from 1 to 65535" % port)
    return port


port_arg = arg_type(check_port, "port")


def check_table(name: str) -> str:
    """A plain table identifier (letters, digits, _ and $, at most 64): what every command writes to.

    >>> check_table('test')
    'test'
    """
    if not TABLE_NAME.match(name or ""):
        raise ConfigError("table name %r is not a plain identifier: use up to 64 letters, digits, _ or $" % name)
    return name


table_arg = arg_type(check_table, "table")


def check_unique_names(names: Iterable[str]) -> None:
    """Refuse two endpoints whose names differ only in case or - / _: they would share one
    password variable (and one column label).

    >>> check_unique_names(['aurora', 'rds'])
    """
    seen = {}  # type: dict
    for name in names:
        key = password_env_name(name)
        if key in seen:
            if seen[key] == name:
                raise ConfigError("endpoint name %s given twice; each endpoint needs its own name" % name)
            raise ConfigError("endpoint names %s and %s would share the password variable %s: give names "
                              "that differ by more than case, - or _" % (seen[key], name, key))
        seen[key] = name


def password_env_name(endpoint_name: str) -> str:
    """FISWATCH_PASSWORD_<NAME>, upper-cased, other characters as underscores.

    >>> password_env_name('aurora-2')
    'FISWATCH_PASSWORD_AURORA_2'
    """
    return "FISWATCH_PASSWORD_" + re.sub(r"[^A-Z0-9]", "_", endpoint_name.upper())


def parse_endpoint(text: str, table: str = "test") -> Endpoint:
    """Parse one --endpoint value (no password yet).

    >>> e = parse_endpoint('aurora=mysql://admin@db.example:3307/testdb')
    >>> (e.name, e.user, e.host, e.port, e.database)
    ('aurora', 'admin', 'db.example', 3307, 'testdb')
    """
    name, sep, url = text.partition("=")
    name = name.strip()
    if not sep or not url:
        raise ConfigError("--endpoint needs NAME=mysql://USER@HOST[:PORT]/DB, e.g. " + EXAMPLE)
    if not NAME.match(name):
        raise ConfigError("endpoint name %r must start with a letter and hold only letters, digits, - or _" % name)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError("endpoint %s: malformed URL (%s); expected mysql://USER@HOST[:PORT]/DB" % (name, exc))
    if parts.scheme not in ("mysql", "mariadb"):
        raise ConfigError("endpoint %s: URL must start with mysql://, e.g. %s" % (name, EXAMPLE))
    if parts.password is not None:
        raise ConfigError(
            "endpoint %s: remove the password from the URL (it would be visible in `ps`); set %s or MYSQL_PWD instead"
            % (name, password_env_name(name)))
    if parts.query or parts.fragment or url.strip().endswith(("?", "#")):
        if re.search(r"(^|[&;])\s*(password|passwd|pwd)\s*=", parts.query or "", re.I):
            raise ConfigError("endpoint %s: remove the password from the URL (passwords never go in URLs: they "
                              "are visible in `ps`); set %s or MYSQL_PWD instead" % (name, password_env_name(name)))
        raise ConfigError("endpoint %s: nothing may follow the database in the URL (?.../#...); driver options go "
                          "in --backend NAME:OPT=VAL, the password in %s" % (name, password_env_name(name)))
    if not parts.hostname:
        raise ConfigError("endpoint %s: no host in URL; expected mysql://USER@HOST[:PORT]/DB" % name)
    if not parts.username:
        raise ConfigError("endpoint %s: no user in URL; expected mysql://USER@HOST[:PORT]/DB" % name)
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database:
        raise ConfigError("endpoint %s: name one database after the host, e.g. mysql://USER@HOST/testdb" % name)
    if port is not None:
        try:
            port = check_port(port)
        except ConfigError as exc:
            raise ConfigError("endpoint %s: %s (leave :PORT out for 3306)" % (name, exc))
    return Endpoint(name=name, host=parts.hostname, port=3306 if port is None else port,
                    user=unquote(parts.username), database=database, table=check_table(table))


def password_for(name: str, environ: Optional[Mapping[str, str]] = None, prompt: bool = True) -> Optional[Secret]:
    """The password for an endpoint: env FISWATCH_PASSWORD_<NAME>, MYSQL_PWD, or a TTY prompt."""
    env = os.environ if environ is None else environ
    for key in (password_env_name(name), "MYSQL_PWD"):
        if key in env:
            return Secret(env[key])
    if prompt and sys.stdin is not None and sys.stdin.isatty():
        try:
            return Secret(getpass.getpass("password for endpoint %s: " % name))
        except (EOFError, KeyboardInterrupt):
            raise ConfigError("no password given for endpoint %s" % name)
    return None


def with_password(endpoint: Endpoint, environ: Optional[Mapping[str, str]] = None, prompt: bool = True) -> Endpoint:
    """The endpoint with its password filled in (if one is found)."""
    if endpoint.password is not None:
        return endpoint
    secret = password_for(endpoint.name, environ, prompt)
    if secret is None:
        return endpoint
    from dataclasses import replace

    return replace(endpoint, password=secret)
