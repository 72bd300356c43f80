"""PyMySQL, as the workshop's second script used it: connect, read and write timeouts 1 s.

PyMySQL's read_timeout bounds each socket read; on expiry it raises 2013 and closes the
connection, so the probe reconnects - to whatever address the name resolves to now.
"""
from typing import Any, Dict, Mapping, Optional, Tuple

from fiswatch.backends.base import Backend, BackendOptionError, classify_error, classify_os_error, parse_seconds
from fiswatch.model import ErrorInfo


class PyMySQLBackend(Backend):
    name = "pymysql"
    library = "PyMySQL"
    module = "pymysql"
    defaults = {"connect_timeout": "1", "read_timeout": "1", "write_timeout": "1"}
    timeout_options = (("connect_timeout", "connect"), ("read_timeout", "read"), ("write_timeout", "write"))
    tls_default = "PREFERRED (1.2: TLS when offered, no certificate check; before 1.2: plaintext)"

    def parse_options(self, options: Mapping[str, str]) -> Dict[str, Any]:
        settings = {key: parse_seconds(key, options[key]) for key in self.defaults}
        if settings["connect_timeout"] is None:
            raise BackendOptionError("connect_timeout for pymysql must be a number of seconds above 0")
        return settings

    def import_driver(self) -> Any:
        import pymysql

        return pymysql

    def notes(self, driver: Any) -> str:
        return "pure Python"

    def connect(self, address: str, port: int, user: str, password: str, database: str,
                server_hostname: Optional[str] = None) -> Any:
        driver = self.import_driver()
        return driver.connect(host=address, port=port, user=user, password=password, database=database,
                              autocommit=False, **self.settings, **self.tls_kwargs(server_hostname or address))

    def tls_kwargs(self, name: str) -> Dict[str, Any]:
        """--ssl-mode as PyMySQL's options: ssl_disabled, or an SSLContext (which PyMySQL then requires)."""
        from fiswatch.backends.tls import client_context

        mode = self.tls.mode
        if mode is None or mode == "PREFERRED":
            return {}  # PyMySQL 1.2 prefers TLS by itself
        if mode == "DISABLED":
            return {"ssl_disabled": True}
        return {"ssl": client_context(self.tls, name)}

    def tls_facts(self, conn: Any) -> Optional[Tuple[str, str]]:
        from fiswatch.backends.tls import socket_facts

        return socket_facts(getattr(conn, "_sock", None))

    def classify(self, exc: BaseException) -> ErrorInfo:
        args: Tuple[Any, ...] = getattr(exc, "args", ())
        if type(exc).__name__ == "InterfaceError" and args[:1] == (0,):
            # PyMySQL's "(0, '')": a statement on a connection whose socket it closed after an earlier error
            return ErrorInfo(2013, "lost", "connection already closed (lost during an earlier statement)")
        if len(args) >= 2 and isinstance(args[0], int):
            return classify_error(args[0], str(args[1]))
        if isinstance(exc, OSError):
            return classify_os_error(exc)
        return classify_error(None, str(exc) or type(exc).__name__)
