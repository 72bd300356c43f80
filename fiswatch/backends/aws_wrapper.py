"""The AWS Advanced Python Wrapper over mysql-connector-python: a client that fails over by itself.

The wrapper (PyPI `aws-advanced-python-wrapper`, 3.x, Python >= 3.10) reads an Aurora
cluster's topology from the database itself (information_schema.replica_host_status) and,
when its connection fails, connects to the instance the topology names as the new writer,
without waiting for the cluster endpoint's DNS change. The application sees
FailoverSuccessError (no transaction was open) or TransactionResolutionUnknownError (one
was: the outcome of its COMMIT is unknown); either way the connection object is already on
the new writer, and the probe keeps it (see fiswatch.engine.probe).

Defaults that make it fail over fast (each one settable with --backend aws-wrapper:KEY=VALUE,
as is any other property of the installed wrapper or of mysql-connector):
  plugins=failover_v2         the current failover plugin (v1 `failover` hangs without a driver read timeout);
                              several joined by + (commas separate options): plugins=bg+failover_v2
  enable_connect_failover=true  load the topology at connect and fail over when a connect fails
  socket_timeout=1            the wrapper's own per-call timeout (not the driver's read_timeout: that one
                              surfaces as a plain error and no failover happens)
  connect_timeout=1           seconds for the TCP connect and handshake
  failover_timeout_sec=60     how long a failover may look for the new writer
  use_pure=true               pure-Python mysql-connector: only its socket can be interrupted
  wrapper_dialect=auto        aurora-mysql on an Aurora cluster endpoint, the wrapper's own detection elsewhere
  wrapper_dialect=detect      never set it: the wrapper's own detection everywhere (a Multi-AZ DB cluster's
                              `.cluster-` name: it finds multi-az-mysql, docs/lesson.md chapter 6)
  cluster_instance_host_pattern=auto  the lab's pattern on a lab endpoint; on AWS the wrapper derives it
                              from the cluster endpoint name (fiswatch then connects by name)
"""
import ipaddress
import sys
from dataclasses import replace
from typing import Any, Dict, Mapping, Optional, Tuple

from fiswatch.backends.base import Backend, BackendOptionError, parse_bool, parse_seconds
from fiswatch.backends.wrapper_process import quiet_logging, release_at_exit, wrapper_cluster_id
from fiswatch.model import BackendInfo, ErrorInfo

PIP = "pip install 'fiswatch[aws-wrapper]'"
MIN_PYTHON = (3, 10)
AUTO = "auto"
# what the probe owns: never from the command line (a password in argv would be a leak)
RESERVED = ("host", "port", "user", "password", "database", "autocommit")
SECRET_WORDS = ("password", "passwd", "secret")
SPLITTING_PLUGINS = ("read_write_splitting", "srw", "gdb_read_write_splitting")  # route on conn.read_only
AWS_DOMAINS = (".rds.amazonaws.com", ".rds.amazonaws.com.cn", ".rds.sc2s.sgov.gov", ".rds.c2s.ic.gov")


class AwsWrapperBackend(Backend):
    name = "aws-wrapper"
    library = "aws-advanced-python-wrapper"
    module = "aws_advanced_python_wrapper"
    defaults = {
        "plugins": "failover_v2",
        "enable_connect_failover": "true",
        "socket_timeout": "1",
        "connect_timeout": "1",
        "failover_timeout_sec": "60",
        "use_pure": "true",
        "wrapper_dialect": AUTO,
        "cluster_instance_host_pattern": AUTO,
    }
    timeout_options = (("connect_timeout", "connect"), ("socket_timeout", "socket"),
                       ("failover_timeout_sec", "failover"))

    tls_default = "PREFERRED (mysql-connector's: TLS when offered, no certificate check)"

    def __init__(self, options: Optional[Mapping[str, str]] = None, endpoint: Any = None, tls: Any = None) -> None:
        self.endpoint = endpoint  # set by for_endpoint(): the Aurora cluster, lab or AWS, this copy serves
        self.user_options = {k: v for k, v in (options or {}).items() if k not in self.TLS_OPTIONS}
        super().__init__(options, tls=tls)
        self._pattern = self._find_host_pattern()
        # address -> the name its certificate holds: the lab's instances, for a verified connection to the new writer
        self._tls_names = lab_tls_names(endpoint) if self.tls.mode == "VERIFY_IDENTITY" else {}

    # -- options ----------------------------------------------------------------------------------------
    def known_options(self) -> Tuple[str, ...]:
        """Ours, plus every property of the installed wrapper and every mysql-connector argument."""
        names = set(self.defaults)
        names.update(self.user_options)  # checked in parse_options, where the reason can be precise
        return tuple(sorted(names))

    def parse_options(self, options: Mapping[str, str]) -> Dict[str, Any]:
        settings: Dict[str, Any] = {}
        extra = sorted(set(options) - set(self.defaults))
        for key in extra:
            _check_key(key)
        known = _known_properties()
        if known is not None:
            unknown = [k for k in extra if k not in known]
            if unknown:
                raise BackendOptionError(
                    "unknown option %s for backend aws-wrapper: not a property of aws-advanced-python-wrapper "
                    "%s nor an argument of mysql-connector (e.g. --backend aws-wrapper:socket_timeout=2)"
                    % (", ".join(unknown), self.version()))
        settings["plugins"] = _text("plugins", options["plugins"]).replace("+", ",")  # bg+failover_v2: commas split options
        settings["enable_connect_failover"] = parse_bool("enable_connect_failover", options["enable_connect_failover"])
        settings["use_pure"] = parse_bool("use_pure", options["use_pure"])
        for key in ("socket_timeout", "connect_timeout"):
            settings[key] = parse_seconds(key, options[key])
        failover = parse_seconds("failover_timeout_sec", options["failover_timeout_sec"])
        if failover is None or failover < 1:
            raise BackendOptionError("failover_timeout_sec must be a whole number of seconds, at least 1 (got %r)"
                                     % options["failover_timeout_sec"])
        settings["failover_timeout_sec"] = int(failover)
        settings["wrapper_dialect"] = _text("wrapper_dialect", options["wrapper_dialect"])
        settings["cluster_instance_host_pattern"] = _text("cluster_instance_host_pattern",
                                                          options["cluster_instance_host_pattern"])
        settings["extra"] = {key: _value(options[key]) for key in extra}
        return settings

    # -- per endpoint -------------------------------------------------------------------------------------
    def for_endpoint(self, endpoint: Any) -> "AwsWrapperBackend":
        """A copy for one endpoint: its own topology cache, dialect and host pattern."""
        return type(self)(self.given, endpoint=endpoint, tls=self.tls_for(endpoint))

    def is_aurora(self) -> bool:
        ep = self.endpoint
        if ep is None:
            return False
        return bool(getattr(ep, "cluster_id", None)) or ".cluster-" in (getattr(ep, "host", "") or "")

    def dialect(self) -> Optional[str]:
        value = self.settings["wrapper_dialect"]
        if value == "detect":
            return None
        if value != AUTO:
            return value
        return "aurora-mysql" if self.is_aurora() else None

    def host_pattern(self) -> Optional[str]:
        return self._pattern

    def _find_host_pattern(self) -> Optional[str]:
        """The pattern given, the endpoint's (a lab's Aurora endpoint carries the lab's), or None
        (the wrapper derives it on AWS)."""
        value = self.settings["cluster_instance_host_pattern"]
        if value != AUTO:
            return value
        if not self.is_aurora():
            return None
        return getattr(self.endpoint, "host_pattern", None) or None

    def properties(self) -> Dict[str, Any]:
        """Everything handed to AwsWrapperConnection.connect besides host, port and credentials."""
        s = self.settings
        props: Dict[str, Any] = {"plugins": s["plugins"], "enable_connect_failover": s["enable_connect_failover"],
                                 "failover_timeout_sec": s["failover_timeout_sec"], "use_pure": s["use_pure"]}
        for key in ("socket_timeout", "connect_timeout"):
            if s[key] is not None:
                props[key] = s[key]
        dialect = self.dialect()
        if dialect:
            props["wrapper_dialect"] = dialect
        pattern = self.host_pattern()
        if pattern:
            props["cluster_instance_host_pattern"] = pattern
        if self.endpoint is not None:
            props["cluster_id"] = wrapper_cluster_id(self.endpoint)
        from fiswatch.backends.mysql_connector import tls_kwargs

        props.update(tls_kwargs(self.tls.mode, self.tls.ca))  # every connection it opens, the new writer's too
        props.update(s["extra"])
        return props

    # -- the driver ---------------------------------------------------------------------------------------
    def import_driver(self) -> Any:
        if sys.version_info < MIN_PYTHON:
            raise ImportError("needs Python >= 3.10 (this is %d.%d)" % sys.version_info[:2])
        import aws_advanced_python_wrapper

        quiet_logging()
        release_at_exit(aws_advanced_python_wrapper)
        return aws_advanced_python_wrapper

    def info(self) -> BackendInfo:
        info = super().info()
        if info.available:
            return replace(info, follows_topology=self.is_aurora())
        if sys.version_info < MIN_PYTHON:
            reason = "needs Python >= 3.10 (this is %d.%d); there: %s" % (sys.version_info[:2] + (PIP,))
        else:
            reason = "%s not installed: %s" % (self.library, PIP)
        return replace(info, reason=reason)

    def notes(self, driver: Any) -> str:
        parts = [self.settings["plugins"]]
        dialect = self.dialect()
        if dialect:
            parts.append(dialect)
        parts.append("pure Python" if self.settings["use_pure"] else "C extension")
        return " ".join(parts)

    def connect(self, address: str, port: int, user: str, password: str, database: str,
                server_hostname: Optional[str] = None) -> Any:
        driver = self.import_driver()
        import mysql.connector

        from fiswatch.backends.mysql_connector import check_tls_required, mysql_verified_target

        from fiswatch.lab.resolver_hook import install_for_endpoint

        lab = install_for_endpoint(self.endpoint) is not None  # a lab's names: its DNS answers them (docs/lab.md)
        props = self.properties()
        host = connect_host(address, server_hostname, "cluster_instance_host_pattern" in props or lab)
        target = mysql.connector.connect
        if self.tls.mode == "VERIFY_IDENTITY":
            names = dict(self._tls_names)
            if server_hostname and host != server_hostname:
                names[host] = server_hostname
            target = mysql_verified_target(names)
        conn = driver.AwsWrapperConnection.connect(
            target, host=host, port=port, user=user, password=password, database=database,
            autocommit=False, **props)
        check_tls_required(self.tls.mode, self.tls_facts(conn), conn)
        return conn

    def start_reading(self, conn: Any) -> None:
        """With a read/write splitting plugin (`plugins=read_write_splitting+failover_v2`, `srw`), a read
        probe's connection is set read-only, which is what moves it to a reader (the plugin's contract)."""
        if set(self.settings["plugins"].split(",")) & set(SPLITTING_PLUGINS):
            conn.read_only = True

    def tls_facts(self, conn: Any) -> Optional[Tuple[str, str]]:
        from fiswatch.backends.mysql_connector import connection_tls_facts

        return connection_tls_facts(conn)

    # -- what the probe asks ------------------------------------------------------------------------------
    def handled_failover(self, exc: BaseException) -> Optional[str]:
        """'failover' / 'in-doubt' when the wrapper already moved the connection to the new writer."""
        names = [cls.__name__ for cls in type(exc).__mro__]
        if "TransactionResolutionUnknownError" in names:
            return "in-doubt"
        if "FailoverSuccessError" in names:
            return "failover"
        return None

    def current_address(self, conn: Any) -> Optional[str]:
        """The host of the instance the wrapper is connected to now (its topology's name for it)."""
        try:
            host = conn._plugin_service.current_host_info.host
        except Exception:  # noqa: BLE001 - not a wrapper connection, or none yet
            return None
        return str(host) if host else None

    def classify(self, exc: BaseException) -> ErrorInfo:
        names = [cls.__name__ for cls in type(exc).__mro__]
        if "TransactionResolutionUnknownError" in names:
            return ErrorInfo(None, "failover-in-doubt", _message(exc) or "failover: transaction outcome unknown")
        if "FailoverSuccessError" in names:
            return ErrorInfo(None, "failover", _message(exc) or "failover: connected to the new writer")
        if "FailoverFailedError" in names:
            return ErrorInfo(None, "failover-failed", _message(exc) or "failover found no writer")
        if "QueryTimeoutError" in names:
            return ErrorInfo(None, "socket-timeout", _message(exc) or "socket_timeout expired")
        inner = getattr(exc, "driver_error", None)
        if isinstance(inner, BaseException) and inner is not exc:
            return self.classify(inner)
        from fiswatch.backends.mysql_connector import MySQLConnectorBackend

        return MySQLConnectorBackend.classify(self, exc)  # type: ignore[arg-type]  # mysql-connector's own errors, unwrapped


def connect_host(address: str, server_hostname: Optional[str], have_pattern: bool) -> str:
    """What the wrapper connects to first.

    With a host pattern (the lab's, or one given) or on a lab the address fiswatch resolved;
    without one, an AWS cluster endpoint name as it is, so that the wrapper can derive the
    instances' names from it (and resolves them itself).

    >>> connect_host('10.0.0.5', 'db.cluster-abc.us-east-1.rds.amazonaws.com', False)
    'db.cluster-abc.us-east-1.rds.amazonaws.com'
    >>> connect_host('127.0.10.1', 'fiswatch-lab.cluster-c0ffee0c0ffe.lab-1.rds.amazonaws.com', True)
    '127.0.10.1'
    """
    if not have_pattern and server_hostname and server_hostname.lower().rstrip(".").endswith(AWS_DOMAINS):
        return server_hostname
    return address


def lab_tls_names(endpoint: Any) -> Dict[str, str]:
    """A lab endpoint's instances: proxy address -> instance endpoint name (what its certificate holds)."""
    source = getattr(endpoint, "source", "") or ""
    if not source.startswith("lab:"):
        return {}
    from fiswatch.lab import api

    try:
        info = api.lab_status(source[4:])
    except Exception:  # noqa: BLE001
        return {}
    return {i.address: i.dns_name for i in info.instances if i.dns_name}


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _check_key(key: str) -> None:
    lowered = key.lower()
    if lowered in RESERVED:
        raise BackendOptionError("option %s of backend aws-wrapper comes from the endpoint, not from --backend"
                                 % key)
    if any(word in lowered for word in SECRET_WORDS):
        raise BackendOptionError("option %s of backend aws-wrapper looks like a secret: secrets never go on the "
                                 "command line (the endpoint's password comes from FISWATCH_PASSWORD_<NAME>)" % key)


def _known_properties() -> Optional[set]:
    """Names the installed wrapper and mysql-connector accept; None when the wrapper is missing."""
    if sys.version_info < MIN_PYTHON:
        return None
    try:
        from aws_advanced_python_wrapper.utils.properties import WrapperProperties, WrapperProperty
        from mysql.connector.constants import DEFAULT_CONFIGURATION
    except Exception:  # noqa: BLE001
        return None
    names = {v.name for v in vars(WrapperProperties).values() if isinstance(v, WrapperProperty)}
    names.update(DEFAULT_CONFIGURATION)
    names.update(("connect_timeout", "read_timeout", "write_timeout"))
    return names


def _text(name: str, value: str) -> str:
    text = str(value).strip()
    if not text:
        raise BackendOptionError("%s of backend aws-wrapper must not be empty" % name)
    return text


def _value(text: str) -> Any:
    """An option's text as the type mysql-connector expects: true/false, a number, none, or text.

    >>> _value('true'), _value('2'), _value('0.5'), _value('none'), _value('127.0.0.?')
    (True, 2, 0.5, None, '127.0.0.?')
    """
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(lowered)
        except ValueError:
            pass
    return text.strip()


def _message(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]
