"""mysql-connector-python (Oracle's driver), as the workshop's first script used it.

Workshop defaults: `connection_timeout=1` and no read or write timeout. The library has
had `read_timeout` / `write_timeout` since 9.2.0, but they default to None: wait
forever. That unset read timeout, not the library, is why the workshop's script hangs.
"""
import functools
from dataclasses import replace
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from fiswatch.backends.base import Backend, BackendOptionError, classify_error, classify_os_error, parse_bool, parse_seconds
from fiswatch.model import ErrorInfo


# mysql.connector.errors classes (9.2+) -> the kind of timeout they are
TIMEOUT_CLASSES = {"ConnectionTimeoutError": "connect-timeout", "ReadTimeoutError": "read-timeout",
                   "WriteTimeoutError": "write-timeout"}


class MySQLConnectorBackend(Backend):
    name = "mysql-connector"
    library = "mysql-connector-python"
    module = "mysql.connector"
    defaults = {"connection_timeout": "1", "read_timeout": "none", "write_timeout": "none", "use_pure": "auto"}
    timeout_options = (("connection_timeout", "connect"), ("read_timeout", "read"), ("write_timeout", "write"))
    tls_default = "PREFERRED (TLS when offered, no certificate check)"

    def parse_options(self, options: Mapping[str, str]) -> Dict[str, Any]:
        settings: Dict[str, Any] = {}
        for key in ("connection_timeout", "read_timeout", "write_timeout"):
            settings[key] = parse_seconds(key, options[key])
        pure = str(options["use_pure"]).strip().lower()
        settings["use_pure"] = None if pure == "auto" else parse_bool("use_pure", pure)
        return settings

    def import_driver(self) -> Any:
        import mysql.connector

        return mysql.connector

    def notes(self, driver: Any) -> str:
        cext = bool(getattr(driver, "HAVE_CEXT", False))
        pure = self.settings.get("use_pure")
        if pure or not cext:
            return "pure Python"
        return "C extension"

    def connect(self, address: str, port: int, user: str, password: str, database: str,
                server_hostname: Optional[str] = None) -> Any:
        driver = self.import_driver()
        kwargs: Dict[str, Any] = dict(host=address, port=port, user=user, password=password,
                                      database=database, autocommit=False)
        if self.settings["connection_timeout"] is not None:
            kwargs["connection_timeout"] = _whole_seconds(self.settings["connection_timeout"])
        for key in ("read_timeout", "write_timeout"):
            if self.settings[key] is not None:
                if not _supports_io_timeouts():
                    raise BackendOptionError(
                        "%s needs mysql-connector-python 9.2 or newer (installed: %s)" % (key, self.version()))
                kwargs[key] = _whole_seconds(self.settings[key])
        if self.settings["use_pure"] is not None:
            kwargs["use_pure"] = self.settings["use_pure"]
        kwargs.update(tls_kwargs(self.tls.mode, self.tls.ca))
        name = server_hostname or address
        by_name = self.tls.mode == "VERIFY_IDENTITY" and name != address and self.settings["use_pure"] is False
        if self.settings["use_pure"] is False or (self.settings["use_pure"] is None and getattr(driver, "HAVE_CEXT", False)):
            from fiswatch.lab.resolver_hook import refuse_c_lookup

            why = refuse_c_lookup(name if by_name else address)  # libmysqlclient would ask the machine's resolver
            if why:
                raise BackendOptionError(why)
        if self.tls.mode == "VERIFY_IDENTITY" and name != address:
            if self.settings["use_pure"] is False:
                # libmysqlclient checks the host it connects to: give it the name (it resolves it itself)
                conn = driver.connect(**dict(kwargs, host=name))
            else:  # the pure-Python driver: the socket to the address, the certificate checked for the name
                conn = connect_by_address(**dict(kwargs, host=name, fiswatch_address=address))
        else:
            conn = driver.connect(**kwargs)
        check_tls_required(self.tls.mode, self.tls_facts(conn), conn)
        return conn

    def tls_facts(self, conn: Any) -> Optional[Tuple[str, str]]:
        return connection_tls_facts(conn)

    def classify(self, exc: BaseException) -> ErrorInfo:
        errno = getattr(exc, "errno", None)
        msg = getattr(exc, "msg", None)
        if msg is not None or (errno is not None and not isinstance(exc, OSError)):
            info = classify_error(errno if isinstance(errno, int) and errno > 0 else None, msg or str(exc))
            # The library's own timeout classes say which wait ran out; their errno (3024, or 2003
            # for a connect) and text do not always (a timed-out handshake reads "Read Operation").
            kind = TIMEOUT_CLASSES.get(type(exc).__name__)
            return replace(info, kind=kind) if kind else info
        return classify_os_error(exc)


def tls_kwargs(mode: Optional[str], ca: Optional[str]) -> Dict[str, Any]:
    """--ssl-mode as mysql-connector's options (REQUIRED is checked after the connect: the driver
    alone would fall back to plaintext when the server offers no TLS).

    >>> sorted(tls_kwargs('VERIFY_IDENTITY', '/ca.pem').items())
    [('ssl_ca', '/ca.pem'), ('ssl_disabled', False), ('ssl_verify_cert', True), ('ssl_verify_identity', True)]
    """
    if mode is None:
        return {}
    if mode == "DISABLED":
        return {"ssl_disabled": True}
    out: Dict[str, Any] = {"ssl_disabled": False}
    if mode in ("VERIFY_CA", "VERIFY_IDENTITY"):
        if ca:
            out["ssl_ca"] = ca
        out["ssl_verify_cert"] = True
        out["ssl_verify_identity"] = mode == "VERIFY_IDENTITY"
    return out


def connection_tls_facts(conn: Any) -> Optional[Tuple[str, str]]:
    """(version, cipher) of a mysql-connector connection (pure Python or C extension; a wrapper's target)."""
    from fiswatch.backends.tls import PLAIN, UNKNOWN, socket_facts

    conn = getattr(conn, "target_connection", conn)  # aws-wrapper: the connection it holds now
    sock = getattr(getattr(conn, "_socket", None), "sock", None)
    if sock is not None:
        return socket_facts(sock)
    cmysql = getattr(conn, "_cmysql", None)
    if cmysql is not None:
        try:
            cipher = cmysql.get_ssl_cipher()
        except Exception:  # noqa: BLE001
            return None
        if not cipher:
            return (PLAIN, "")
        cipher = cipher.decode() if isinstance(cipher, bytes) else str(cipher)
        # the C extension names the cipher, not the protocol: TLS 1.3 suites alone start with TLS_
        return ("TLSv1.3" if cipher.startswith("TLS_") else UNKNOWN, cipher)
    return None


def check_tls_required(mode: Optional[str], facts: Optional[Tuple[str, str]], conn: Any) -> None:
    """REQUIRED and stricter never run a plaintext session: close it and raise TlsRequiredError (2026 tls)."""
    from fiswatch.backends.tls import PLAIN, TlsRequiredError

    if mode in ("REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY") and facts is not None and facts[0] == PLAIN:
        try:
            conn.close()
        except Exception:  # noqa: BLE001
            pass
        raise TlsRequiredError()


@functools.lru_cache(maxsize=None)
def _by_address_class() -> Any:
    from mysql.connector.connection import MySQLConnection

    class ByAddress(MySQLConnection):
        """A pure-Python connection whose `host` is the name (TLS checks it) and whose socket goes to an address."""

        def __init__(self, *args: Any, fiswatch_address: Optional[str] = None, **kwargs: Any) -> None:
            self._fiswatch_address = fiswatch_address
            super().__init__(*args, **kwargs)

        def _get_connection(self) -> Any:
            sock = super()._get_connection()
            if self._fiswatch_address:
                sock.server_host = self._fiswatch_address  # where the TCP connect goes (opened later)
            return sock

    return ByAddress


def connect_by_address(**kwargs: Any) -> Any:
    """mysql-connector (pure Python) to kwargs['fiswatch_address'], TLS verified for kwargs['host']."""
    kwargs.pop("use_pure", None)
    return _by_address_class()(**kwargs)


def mysql_verified_target(names: Mapping[str, str]) -> Callable[..., Any]:
    """A `mysql.connector.connect` for the AWS wrapper that connects to the address it is given and checks
    the certificate for that address's name (`names`: address -> name; on AWS the wrapper uses names)."""
    import mysql.connector

    def connect(**kwargs: Any) -> Any:
        host = kwargs.get("host", "")
        name = names.get(host, host)
        if name == host:
            return mysql.connector.connect(**kwargs)
        return connect_by_address(**dict(kwargs, host=name, fiswatch_address=host))

    return connect


def _whole_seconds(value: float) -> int:
    """The C extension takes whole seconds; round up so 0.5 does not become 'none'."""
    whole = int(value)
    return whole if whole == value else whole + 1


def _supports_io_timeouts() -> bool:
    try:
        from mysql.connector.constants import DEFAULT_CONFIGURATION
    except ImportError:  # pragma: no cover - very old library
        return False
    return "read_timeout" in DEFAULT_CONFIGURATION


