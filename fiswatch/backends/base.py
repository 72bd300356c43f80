"""The small interface every connector backend implements.

A backend knows one MySQL client library: how to connect with the options the user
gave, what its effective timeouts are, and how to turn its exceptions into an
ErrorInfo. The workload itself (INSERT / COMMIT / SELECT) is plain DB-API and lives
in fiswatch.engine.probe, so every backend runs exactly the same statements.
"""
import re
import socket
from typing import Any, Dict, Mapping, Optional, Tuple

from fiswatch.backends.tls import is_tls_error
from fiswatch.config.tls import TlsOptions
from fiswatch.model import BackendInfo, ErrorInfo

# MySQL / MariaDB error numbers a failover produces, with the short word shown on screen.
ERROR_KINDS: Dict[int, str] = {
    1044: "access-denied",
    1045: "auth",
    1049: "unknown-db",
    1146: "no-table",
    1205: "lock-wait",
    1213: "deadlock",
    1290: "read-only",
    1836: "read-only",
    1927: "killed",
    2026: "tls",  # CR_SSL_CONNECTION_ERROR: handshake, certificate, or TLS required but not offered
    3159: "tls",  # ER_SECURE_TRANSPORT_REQUIRED: the server refuses a plaintext session
    2003: "refused",
    2005: "unknown-host",
    2006: "gone-away",
    2013: "lost",
    2055: "lost",
    4031: "disconnected",
}


class BackendOptionError(ValueError):
    """A backend option the user gave is unknown or malformed (one clear line)."""


NO_TIMEOUT = ("none", "off")


def parse_seconds(name: str, value: str) -> Optional[float]:
    """Parse a timeout option: a number of seconds above 0, or none/off for no timeout.

    0 is refused rather than read as "none": a timeout of 0 that silently waits forever is
    exactly the trap fiswatch exists to show. The number goes through the same check as
    every seconds option (fiswatch.config.checks.check_seconds: no nan, no inf, at most an hour).

    >>> parse_seconds('read_timeout', '1.5')
    1.5
    >>> parse_seconds('read_timeout', 'none') is None
    True
    """
    from fiswatch.config.checks import HOUR, ConfigError, check_seconds

    text = str(value).strip().lower()
    if text in NO_TIMEOUT:
        return None
    try:
        return check_seconds(text, 0.0, HOUR, low_ok=False,
                             low_hint="write %s=none to wait forever on purpose" % name)
    except ConfigError as exc:
        raise BackendOptionError("%s=%s: %s" % (name, value, exc))


def _tls_options(backend: str, base: TlsOptions, given: Mapping[str, str]) -> TlsOptions:
    """--ssl-mode / --ssl-ca, overridden per backend by `--backend NAME:ssl_mode=...,ssl_ca=...`."""
    from fiswatch.config.checks import ConfigError
    from fiswatch.config.tls import check_ca_file, check_mode

    try:
        mode = check_mode(given["ssl_mode"]) if "ssl_mode" in given else base.mode
        ca = check_ca_file(given["ssl_ca"]) if "ssl_ca" in given else base.ca
    except ConfigError as exc:
        raise BackendOptionError("backend %s: %s" % (backend, exc))
    return TlsOptions(mode, ca)


def parse_bool(name: str, value: str) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise BackendOptionError("%s must be true or false, not %r" % (name, value))


# Timeouts, told apart by where the wait was: the client gave up connecting, reading or
# writing (its own timeouts), or the server ended a statement that ran too long.
QUERY_TIMEOUT_CODES = (1969,)  # MariaDB ER_STATEMENT_TIMEOUT (max_statement_time)
QUERY_TIMEOUT_TEXTS = ("max_statement_time", "maximum statement execution time")  # MariaDB, MySQL 3024
CONNECT_CODES = (2002, 2003)  # CR_CONNECTION_ERROR, CR_CONN_HOST_ERROR: the TCP connect itself
_TIMED_OUT = re.compile(r"timed out|timeout|system error: 110\b|\(110\)|errno 110\b")


def timeout_kind(code: Optional[int], message: str) -> Optional[str]:
    """connect-timeout, read-timeout, write-timeout, query-timeout, or timeout when the driver
    does not say which wait ran out; None when not a timeout.

    MySQL's server-side query timeout and mysql-connector's client read timeout share the
    number 3024, so the text decides: the server says "maximum statement execution time".

    >>> timeout_kind(2003, "Can't connect to MySQL server on 'db' (timed out)")
    'connect-timeout'
    >>> timeout_kind(2006, "MySQL server has gone away (TimeoutError('timed out'))")
    'write-timeout'
    >>> timeout_kind(3024, "Query execution was interrupted, maximum statement execution time exceeded")
    'query-timeout'
    """
    lowered = message.lower()
    if code in QUERY_TIMEOUT_CODES or any(text in lowered for text in QUERY_TIMEOUT_TEXTS):
        return "query-timeout"
    if not _TIMED_OUT.search(lowered):
        return None
    if code in CONNECT_CODES or "can't connect" in lowered:
        return "connect-timeout"
    if code == 2013 and "system error: 110" in lowered:
        # libmysqlclient (mysql-connector's C extension) reports a timed-out read or write
        # as 2013 with ETIMEDOUT and a stale state text: which wait it was is not known
        return "timeout"
    if "write" in lowered or code == 2006:  # PyMySQL reports a timed-out send as 2006 "gone away (timed out)"
        return "write-timeout"
    if code in (None, 2013, 2055, 3024) or "read" in lowered:
        return "read-timeout"
    return None


def classify_error(code: Optional[int], message: str) -> ErrorInfo:
    """Reduce an error number and text to the ErrorInfo shown on screen (300 characters: an AWS-shaped
    host name in the driver's text leaves the reason at its end, e.g. "certificate has expired")."""
    message = " ".join(str(message).split())[:300]
    lowered = message.lower()
    kind = timeout_kind(code, message) or ERROR_KINDS.get(code or -1)
    if kind in (None, "refused", "lost", "error") and is_tls_error(code, message):
        kind = "tls"
    if kind is None:
        if "refused" in lowered:
            kind = "refused"
        elif "read-only" in lowered or "read only" in lowered:
            kind = "read-only"
        else:
            kind = "error"
    return ErrorInfo(code, kind, message)


def classify_os_error(exc: BaseException) -> ErrorInfo:
    """Errors raised by the socket layer rather than by the driver."""
    import ssl

    if isinstance(exc, ssl.SSLError) or isinstance(exc, ssl.CertificateError):
        return ErrorInfo(2026, "tls", " ".join(str(exc).split())[:200])
    info = getattr(exc, "info", None)
    if isinstance(info, ErrorInfo):  # TlsRequiredError
        return info
    if isinstance(exc, socket.timeout):
        return ErrorInfo(None, "read-timeout", str(exc) or "timed out")
    if isinstance(exc, ConnectionRefusedError):
        return ErrorInfo(2003, "refused", str(exc))
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return ErrorInfo(2013, "lost", str(exc))
    return ErrorInfo(None, type(exc).__name__, str(exc))


class Backend:
    """Base class: subclasses set the class attributes and implement the hooks."""

    name = "base"
    library = ""  # distribution name, for the version lookup
    module = ""  # import name
    # option name -> default value as text (what the workshop's script used)
    defaults: Dict[str, str] = {}
    # option names that hold timeouts, shown in the column header, in this order
    timeout_options: Tuple[Tuple[str, str], ...] = ()  # (option, label)
    # what the driver does about TLS when fiswatch is not told (`fiswatch backends`, docs/backends.md)
    tls_default = "unknown"
    TLS_OPTIONS = ("ssl_mode", "ssl_ca")  # every backend's, as --ssl-mode / --ssl-ca are everyone's

    def __init__(self, options: Optional[Mapping[str, str]] = None, tls: Optional[TlsOptions] = None) -> None:
        options = dict(options or {})
        self.given = dict(options)  # as the user wrote them (for_endpoint builds copies from these)
        self.tls = _tls_options(self.name, tls or TlsOptions(), {k: options.pop(k) for k in self.TLS_OPTIONS
                                                                if k in options})
        unknown = sorted(set(options) - set(self.known_options()))
        if unknown:
            raise BackendOptionError(
                "unknown option %s for backend %s (known: %s)"
                % (", ".join(unknown), self.name, ", ".join(sorted(self.known_options())))
            )
        merged = dict(self.defaults)
        merged.update(options)
        self.options: Dict[str, str] = merged
        try:
            self.settings: Dict[str, Any] = self.parse_options(merged)
        except BackendOptionError as exc:
            raise BackendOptionError("backend %s: %s" % (self.name, exc))

    # -- hooks ---------------------------------------------------------------------------------
    def known_options(self) -> Tuple[str, ...]:
        return tuple(self.defaults)

    def parse_options(self, options: Mapping[str, str]) -> Dict[str, Any]:
        """Turn option text into driver keyword arguments; raise BackendOptionError."""
        return {}

    def import_driver(self) -> Any:
        """Import and return the driver module (ImportError when missing)."""
        raise NotImplementedError

    def connect(self, address: str, port: int, user: str, password: str, database: str,
                server_hostname: Optional[str] = None) -> Any:
        """Open a DB-API connection with autocommit off."""
        raise NotImplementedError

    def classify(self, exc: BaseException) -> ErrorInfo:
        """Turn an exception from this driver into an ErrorInfo."""
        return classify_os_error(exc)

    def notes(self, driver: Any) -> str:
        return ""

    # -- for a client that fails over by itself (see fiswatch/backends/aws_wrapper.py) -------------------
    def for_endpoint(self, endpoint: Any) -> "Backend":
        """The backend one endpoint's probe uses: its TLS (the lab's CA) settled; BackendOptionError when a
        verifying --ssl-mode has no CA (a client with per-cluster state returns a copy too)."""
        tls = self.tls_for(endpoint)
        return self if tls == self.tls else type(self)(self.given, tls=tls)

    def tls_for(self, endpoint: Any) -> TlsOptions:
        from fiswatch.config.checks import ConfigError
        from fiswatch.config.tls import effective

        try:
            return effective(self.tls, getattr(endpoint, "host", ""), getattr(endpoint, "ca_file", None),
                             getattr(endpoint, "source", "") or "")
        except ConfigError as exc:
            raise BackendOptionError("%s (endpoint %s, backend %s)" % (exc, getattr(endpoint, "name", "?"), self.name))

    def tls_facts(self, conn: Any) -> Optional[Tuple[str, str]]:
        """(version, cipher) of an open connection: ('TLSv1.3', 'TLS_AES_...'), ('plain', ''), None unknown."""
        return None

    def handled_failover(self, exc: BaseException) -> Optional[str]:
        """None for an ordinary error; 'failover' or 'in-doubt' (a transaction was open) when the
        client has already moved this connection to the new writer and it can be used again."""
        return None

    def current_address(self, conn: Any) -> Optional[str]:
        """The host a connection is on now, when the client may have moved it (None: as connected)."""
        return None

    def start_reading(self, conn: Any) -> None:
        """A read probe's new connection (fiswatch.engine.readround): tell the client it will only read,
        where that routes it (the AWS wrapper's read/write splitting plugins: a reader). Nothing by default."""

    # -- shared ----------------------------------------------------------------------------------
    def tls_text(self) -> str:
        """`ssl_mode=VERIFY_IDENTITY` or the driver's default, for `fiswatch backends` and run_start."""
        return self.tls.describe() if self.tls.mode or self.tls.ca else "driver default: " + self.tls_default

    def version(self) -> str:
        from importlib import metadata

        try:
            return metadata.version(self.library)
        except Exception:  # noqa: BLE001
            return "?"

    def effective_timeouts(self) -> Tuple[Tuple[str, Optional[float]], ...]:
        return tuple((label, self.settings.get(option)) for option, label in self.timeout_options)

    def info(self) -> BackendInfo:
        """What the column header shows. Never raises: a missing driver is 'unavailable'."""
        try:
            driver = self.import_driver()
        except Exception as exc:  # noqa: BLE001 - ImportError, or a broken install
            return BackendInfo(
                name=self.name, library=self.library, version="-", timeouts=self.effective_timeouts(),
                available=False, reason="%s not installed: pip install %s (%s)" % (self.library, self.library, exc),
            )
        return BackendInfo(
            name=self.name, library=self.library, version=self.version(),
            timeouts=self.effective_timeouts(), available=True, notes=self.notes(driver),
        )
