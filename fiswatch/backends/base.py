"""The small interface every connector backend implements.

A backend knows one MySQL client library: how to connect with the options the user
gave, what its effective timeouts are, and how to turn its exceptions into an
ErrorInfo. The workload itself (INSERT / COMMIT / SELECT) is plain DB-API and lives
in fiswatch.probe, so every backend runs exactly the same statements.
"""
import socket
from typing import Any, Dict, Mapping, Optional, Tuple

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
    2003: "refused",
    2005: "unknown-host",
    2006: "gone-away",
    2013: "lost",
    2055: "lost",
    3024: "read-timeout",
    4031: "disconnected",
}


class BackendOptionError(ValueError):
    """A backend option the user gave is unknown or malformed (one clear line)."""


def parse_seconds(name: str, value: str) -> Optional[float]:
    """Parse a timeout option: a number of seconds, or none/0/off for no timeout.

    >>> parse_seconds('read_timeout', '1.5')
    1.5
    >>> parse_seconds('read_timeout', 'none') is None
    True
    """
    text = str(value).strip().lower()
    if text in ("none", "off", "no", "0", ""):
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise BackendOptionError("%s must be a number of seconds or 'none', not %r" % (name, value))
    if seconds < 0:
        raise BackendOptionError("%s must not be negative (got %r)" % (name, value))
    return seconds


def parse_bool(name: str, value: str) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise BackendOptionError("%s must be true or false, not %r" % (name, value))


def classify_error(code: Optional[int], message: str) -> ErrorInfo:
    """Reduce an error number and text to the ErrorInfo shown on screen."""
    message = " ".join(str(message).split())[:200]
    lowered = message.lower()
    if "timed out" in lowered or "timeout" in lowered or "system error: 110" in lowered:
        if code in (None, 2013, 2055, 3024) or "read" in lowered:
            return ErrorInfo(code, "read-timeout", message)
    kind = ERROR_KINDS.get(code or -1)
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

    def __init__(self, options: Optional[Mapping[str, str]] = None) -> None:
        options = dict(options or {})
        unknown = sorted(set(options) - set(self.known_options()))
        if unknown:
            raise BackendOptionError(
                "unknown option %s for backend %s (known: %s)"
                % (", ".join(unknown), self.name, ", ".join(sorted(self.known_options())))
            )
        merged = dict(self.defaults)
        merged.update(options)
        self.options: Dict[str, str] = merged
        self.settings: Dict[str, Any] = self.parse_options(merged)

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

    # -- shared ----------------------------------------------------------------------------------
    def version(self) -> str:
        from importlib import metadata

        try:
            return metadata.version(self.library)
        except Exception:
            return "?"

    def effective_timeouts(self) -> Tuple[Tuple[str, Optional[float]], ...]:
        return tuple((label, self.settings.get(option)) for option, label in self.timeout_options)

    def info(self) -> BackendInfo:
        """What the column header shows. Never raises: a missing driver is 'unavailable'."""
        try:
            driver = self.import_driver()
        except Exception as exc:  # ImportError, or a broken install
            return BackendInfo(
                name=self.name, library=self.library, version="-", timeouts=self.effective_timeouts(),
                available=False, reason="%s not installed: pip install %s (%s)" % (self.library, self.library, exc),
            )
        return BackendInfo(
            name=self.name, library=self.library, version=self.version(),
            timeouts=self.effective_timeouts(), available=True, notes=self.notes(driver),
        )
