"""Endpoint specs and passwords from the command line and the environment.

`--endpoint NAME=mysql://USER@HOST[:PORT]/DB`. Passwords never come from the command line
(argv is visible to every user of the machine in `ps`): they come from
FISWATCH_PASSWORD_<NAME>, else MYSQL_PWD, else a prompt when stdin is a terminal.
"""
import getpass
import os
import re
import sys
from typing import Mapping, Optional
from urllib.parse import unquote, urlsplit

from fiswatch.model import Endpoint, Secret

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
EXAMPLE = "--endpoint aurora=mysql://admin@mycluster.cluster-abc.us-east-1.rds.amazonaws.com:3306/testdb"


class ConfigError(ValueError):
    """Bad input from the user: str() is one line saying what and what to do."""


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
    if not parts.hostname:
        raise ConfigError("endpoint %s: no host in URL; expected mysql://USER@HOST[:PORT]/DB" % name)
    if not parts.username:
        raise ConfigError("endpoint %s: no user in URL; expected mysql://USER@HOST[:PORT]/DB" % name)
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database:
        raise ConfigError("endpoint %s: name one database after the host, e.g. mysql://USER@HOST/testdb" % name)
    return Endpoint(name=name, host=parts.hostname, port=port or 3306, user=unquote(parts.username),
                    database=database, table=table)


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
