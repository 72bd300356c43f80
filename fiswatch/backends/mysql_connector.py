"""mysql-connector-python (Oracle's driver), as the workshop's first script used it.

Workshop defaults: `connection_timeout=1` and no read or write timeout. The library has
had `read_timeout` / `write_timeout` since 9.2.0, but they default to None: wait
forever. That unset read timeout, not the library, is why the workshop's script hangs.
"""
from dataclasses import replace
from typing import Any, Dict, Mapping, Optional

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
        return driver.connect(**kwargs)

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


