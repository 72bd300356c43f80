"""Find backends: built-ins plus anything installed in the `fiswatch.backends` entry-point group."""
from typing import Any, Dict, List, Optional, Tuple, Type

from fiswatch.backends.base import Backend, BackendOptionError
from fiswatch.model import BackendSpec

GROUP = "fiswatch.backends"
BUILTIN = {
    "mysql-connector": "fiswatch.backends.mysql_connector:MySQLConnectorBackend",
    "pymysql": "fiswatch.backends.pymysql_backend:PyMySQLBackend",
    "aws-wrapper": "fiswatch.backends.aws_wrapper:AwsWrapperBackend",
}
DEFAULT_BACKENDS = ("mysql-connector", "pymysql")


class UnknownBackend(ValueError):
    pass


def _entry_points() -> Dict[str, str]:
    """Installed entry points of our group as name -> 'module:attr' (3.9 and 3.10+ APIs)."""
    from importlib import metadata

    try:
        eps = metadata.entry_points()
        if hasattr(eps, "select"):
            selected = eps.select(group=GROUP)
        else:  # Python 3.9: a dict of group -> list
            selected = eps.get(GROUP, [])
        return {ep.name: ep.value for ep in selected}
    except Exception:  # noqa: BLE001
        return {}


def available_backends() -> Dict[str, str]:
    """Backend name -> import path; built-ins first so a source checkout works uninstalled."""
    found = dict(BUILTIN)
    for name, value in _entry_points().items():
        found.setdefault(name, value)
    return found


def load_backend_class(name: str) -> Type[Backend]:
    paths = available_backends()
    if name not in paths:
        raise UnknownBackend("unknown backend %r (installed: %s); `fiswatch backends` lists them"
                             % (name, ", ".join(sorted(paths))))
    module_name, _, attr = paths[name].partition(":")
    import importlib

    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except Exception as exc:  # noqa: BLE001
        raise UnknownBackend("backend %r could not be loaded from %s: %s" % (name, paths[name], exc))


def parse_backend_spec(text: str) -> BackendSpec:
    """`pymysql`, `mysql-connector:read_timeout=1,use_pure=true` or `aurora/aws-wrapper` -> BackendSpec.

    A prefix `ENDPOINT/` (or `E1+E2/`) runs the backend on those endpoints only.

    >>> parse_backend_spec('mysql-connector:read_timeout=1').label
    'mysql-connector:read_timeout=1'
    >>> parse_backend_spec('pymysql').options
    ()
    >>> spec = parse_backend_spec('aurora/aws-wrapper:socket_timeout=2')
    >>> spec.endpoints, spec.label
    (('aurora',), 'aws-wrapper:socket_timeout=2')
    """
    name, _, rest = text.strip().partition(":")
    endpoints: Tuple[str, ...] = ()
    if "/" in name:
        where, _, name = name.rpartition("/")
        endpoints = tuple(e.strip() for e in where.split("+"))
        if not all(endpoints):
            raise BackendOptionError("empty endpoint name in %r; use e.g. --backend aurora/aws-wrapper" % text)
    if not name:
        raise BackendOptionError("empty backend name in %r; use e.g. --backend pymysql" % text)
    options: List[Tuple[str, str]] = []
    if rest:
        for item in rest.split(","):
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise BackendOptionError(
                    "backend option %r in %r is not KEY=VALUE; e.g. --backend mysql-connector:read_timeout=1"
                    % (item, text))
            options.append((key.strip(), value.strip()))
    return BackendSpec(name.strip(), tuple(options), endpoints)


def make_backend(spec: BackendSpec, tls: Any = None) -> Backend:
    """The backend of a spec; `tls` (fiswatch.config.tls.TlsOptions): --ssl-mode / --ssl-ca for all."""
    cls = load_backend_class(spec.name)
    return cls(spec.option_dict(), tls=tls) if tls is not None else cls(spec.option_dict())


def describe_backends() -> List[Tuple[str, str, str, str, str]]:
    """(name, library, version, defaults, notes) for `fiswatch backends`."""
    rows = []
    for name in sorted(available_backends()):
        try:
            backend = make_backend(BackendSpec(name))
        except (UnknownBackend, BackendOptionError) as exc:
            rows.append((name, "-", "-", "-", str(exc)))
            continue
        info = backend.info()
        defaults = " ".join("%s=%s" % kv for kv in sorted(backend.defaults.items()))
        notes = info.notes if info.available else info.reason
        notes = "\n".join(n for n in (notes, "TLS by default: " + backend.tls_default) if n)
        rows.append((name, info.library, info.version, defaults, notes))
    return rows


def resolve_specs(texts: Optional[List[str]]) -> List[BackendSpec]:
    return [parse_backend_spec(t) for t in (texts or DEFAULT_BACKENDS)]
