"""Shared pieces of the benchmark: the database, the machine, statistics, result rows."""
import os
import platform
import secrets
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

from fiswatch.model import Endpoint, Secret

HOST = os.environ.get("FISWATCH_BENCH_MYSQL_HOST", "127.0.0.1")
PORT = int(os.environ.get("FISWATCH_BENCH_MYSQL_PORT", "3306"))
DATABASE = "fiswatch_bench"
USER = "fiswatch_bench"
ROOT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class BenchError(RuntimeError):
    """A benchmark cannot run (no server, missing piece): one line for the user."""


@dataclass
class Metric:
    """One number of a figure, with its target when it has one."""

    name: str
    value: Optional[float]
    unit: str = ""
    target: Optional[float] = None
    op: str = ""  # "<=" or ">=" (empty: informational, e.g. the baseline)
    note: str = ""

    @property
    def met(self) -> Optional[bool]:
        if self.target is None or not self.op or self.value is None:
            return None
        return self.value <= self.target if self.op == "<=" else self.value >= self.target

    def as_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "value": _round(self.value), "unit": self.unit, "target": self.target,
                "op": self.op, "met": self.met, "note": self.note}


@dataclass
class Figure:
    number: int
    title: str
    metrics: List[Metric] = field(default_factory=list)
    details: Dict[str, Any] = field(default_factory=dict)
    error: Optional[str] = None
    seconds: float = 0.0

    def add(self, *args: Any, **kwargs: Any) -> Metric:
        metric = Metric(*args, **kwargs)
        self.metrics.append(metric)
        return metric

    def as_dict(self) -> Dict[str, Any]:
        return {"figure": self.number, "title": self.title, "metrics": [m.as_dict() for m in self.metrics],
                "details": self.details, "error": self.error, "seconds": round(self.seconds, 1)}


def _round(value: Optional[float]) -> Optional[float]:
    if value is None:
        return None
    return float("%.4g" % value)


# -- statistics -------------------------------------------------------------------------------------------
def known(value: Optional[float]) -> float:
    """A statistic a figure's note cannot do without (the median of samples it just took): never None."""
    if value is None:
        raise BenchError("no samples to take a statistic of")
    return value


def median(values: Sequence[Optional[float]]) -> Optional[float]:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def percentile(values: Sequence[Optional[float]], pct: float) -> Optional[float]:
    """Nearest-rank percentile (p95 of 20 values is the 19th smallest)."""
    present = sorted(v for v in values if v is not None)
    if not present:
        return None
    import math

    rank = max(1, int(math.ceil(pct / 100.0 * len(present))))
    return present[rank - 1]


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    return None


# -- the database ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchDb:
    host: str
    port: int
    user: str
    password: Secret
    database: str

    def endpoint(self, name: str, table: str = "test") -> Endpoint:
        return Endpoint(name=name, host=self.host, port=self.port, user=self.user, database=self.database,
                        table=table, password=self.password, source="bench")

    def url(self) -> str:
        return "mysql://%s@%s:%d/%s" % (self.user, self.host, self.port, self.database)


def root_connect(host: str = HOST, port: int = PORT, database: Optional[str] = None):
    import pymysql

    return pymysql.connect(host=host, port=port, user="root", password="", database=database,
                           autocommit=True, connect_timeout=5)


def setup_database(tables: Sequence[str] = ("test",), host: str = HOST, port: int = PORT) -> BenchDb:
    """Create the bench database, its tables and a non-root user (as root, empty password)."""
    import pymysql

    password = "bench-" + secrets.token_hex(8)
    # per run: concurrent runs (CI, several checkouts on one machine) must not reset each
    # other's password, nor truncate each other's tables mid-figure (deadlocks, wrong rates)
    run = secrets.token_hex(3)
    user = "%s_%s" % (USER, run)
    database = "%s_%s" % (DATABASE, run)
    try:
        conn = root_connect(host, port)
    except pymysql.err.OperationalError as exc:
        raise BenchError("MariaDB is not reachable as root on %s:%d (%s); start it or set "
                         "FISWATCH_BENCH_MYSQL_HOST/PORT" % (host, port, exc.args[-1]))
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE IF NOT EXISTS %s" % database)
            for table in tables:
                cur.execute("CREATE TABLE IF NOT EXISTS %s.`%s` (id INT AUTO_INCREMENT PRIMARY KEY, value INT)"
                            % (database, table))
            for h in ("127.0.0.1", "localhost", "%"):
                cur.execute("CREATE USER IF NOT EXISTS '%s'@'%s' IDENTIFIED BY %%s" % (user, h.replace("%", "%%")),
                            (password,))
                cur.execute("GRANT ALL ON %s.* TO '%s'@'%s'" % (database, user, h))
    finally:
        conn.close()
    return BenchDb(host, port, user, Secret(password), database)


def drop_user(db: BenchDb) -> None:
    """Remove the per-run user and database (best effort)."""
    try:
        conn = root_connect(db.host, db.port)
    except Exception:  # noqa: BLE001
        return
    try:
        with conn.cursor() as cur:
            for h in ("127.0.0.1", "localhost", "%"):
                cur.execute("DROP USER IF EXISTS '%s'@'%s'" % (db.user, h))
            if db.database.startswith(DATABASE + "_"):
                cur.execute("DROP DATABASE IF EXISTS `%s`" % db.database)
    finally:
        conn.close()


def truncate(db: BenchDb, tables: Sequence[str]) -> None:
    """Keep the tables small so every repeat does the same work."""
    conn = root_connect(db.host, db.port, db.database)
    try:
        with conn.cursor() as cur:
            for table in tables:
                cur.execute("TRUNCATE TABLE `%s`" % table)
    finally:
        conn.close()


def server_version(db: BenchDb) -> str:
    conn = root_connect(db.host, db.port)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            return str(cur.fetchone()[0])
    finally:
        conn.close()


# -- the machine -----------------------------------------------------------------------------------------------
def machine_info(db: Optional[BenchDb] = None) -> Dict[str, Any]:
    info: Dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": _memory_gib(),
        "os": "%s %s" % (platform.system(), platform.release()),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "drivers": _driver_versions(),
    }
    try:
        info["loadavg_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    if db is not None:
        try:
            info["server"] = server_version(db)
        except Exception as exc:  # noqa: BLE001
            info["server"] = "? (%s)" % exc
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _memory_gib() -> Optional[float]:
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2.0 ** 30, 1)
    except Exception:  # noqa: BLE001
        return None


def _driver_versions() -> Dict[str, str]:
    from importlib import metadata

    out = {}
    try:  # pymysql.__version__ is a MySQLdb-compatibility number, not the release
        out["PyMySQL"] = metadata.version("PyMySQL")
    except Exception:  # noqa: BLE001
        out["PyMySQL"] = "missing"
    try:
        import mysql.connector

        out["mysql-connector-python"] = "%s (%s)" % (
            mysql.connector.__version__, "C extension" if getattr(mysql.connector, "HAVE_CEXT", False)
            else "pure Python")
    except Exception:  # noqa: BLE001
        out["mysql-connector-python"] = "missing"
    return out


# -- subprocesses --------------------------------------------------------------------------------------------------
def child_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Environment for a fiswatch child: this checkout first on sys.path, no AWS, no proxy."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT_DIR + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env.pop("NO_COLOR", None)
    if extra:
        env.update(extra)
    return env


def fiswatch_argv(*args: str) -> List[str]:
    return [sys.executable, "-m", "fiswatch"] + list(args)


def run_quiet(argv: Sequence[str], env: Optional[Dict[str, str]] = None, timeout: float = 60.0) -> float:
    """Wall time of a command whose output is discarded; raises BenchError when it fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(list(argv), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          timeout=timeout, cwd=ROOT_DIR)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise BenchError("%s failed (%d): %s" % (" ".join(argv[:4]), proc.returncode,
                                                 proc.stderr.decode("utf-8", "replace").strip()[-300:]))
    return elapsed
