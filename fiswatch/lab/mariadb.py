"""MariaDB servers of the lab: one template datadir, copied per instance; root SQL over the socket."""
import os
import shutil
import signal
import subprocess
import time
from typing import Any, List, Optional, Sequence, Tuple

from fiswatch.lab.layout import TEMPLATE_DIR, InstanceSpec, Layout

INSTALL_HINT = ("mariadbd is not installed: run `sudo scripts/install_mariadb.sh` "
                "(or `sudo apt-get install -y mariadb-server`)")


SEMI_SYNC_TIMEOUT_MS = 10000  # MariaDB's documented default of rpl_semi_sync_master_timeout


def maz_server_options(layout: Layout, spec: InstanceSpec) -> List[str]:
    """mariadbd options of a Multi-AZ DB cluster instance (semi-sync built into MariaDB 10.3+); lab/maz.py
    runs the cluster, this module starts its servers."""
    return ["--report-host=" + layout.proxy_address(spec)[0], "--rpl-semi-sync-slave-enabled=ON",
            "--rpl-semi-sync-master-timeout=%d" % SEMI_SYNC_TIMEOUT_MS]


class MariaDBError(RuntimeError):
    """A server failed; str() is one line."""


def find_binaries(layout: Layout) -> Tuple[str, str]:
    """Absolute paths of mariadbd and mariadb-install-db, or MariaDBError with the install command."""
    found = []
    for name in (layout.mariadbd, layout.install_db):
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/usr/bin")
        if path is None:
            raise MariaDBError(INSTALL_HINT)
        found.append(path)
    return found[0], found[1]


def _innodb_options(layout: Layout) -> List[str]:
    return ["--innodb-buffer-pool-size=" + layout.buffer_pool, "--innodb-log-file-size=4M",
            "--innodb-data-file-path=ibdata1:4M:autoextend"]


def _user_option() -> List[str]:
    if os.geteuid() == 0:
        return ["--user=root"]  # mariadbd refuses to run as root without it
    return []


def ensure_template(layout: Layout, install_db: str) -> str:
    """An initialised datadir in the lab dir (made once, copied per instance)."""
    template = layout.path(TEMPLATE_DIR)
    if os.path.exists(os.path.join(template, "mysql", "user.frm")) or \
            os.path.exists(os.path.join(template, "mysql", "global_priv.frm")):
        return template
    shutil.rmtree(template, ignore_errors=True)
    log = layout.path("install-db.log")
    # its own temporary directory: the bootstrap's temporary tables in the shared /tmp were seen to vanish
    # under parallel test runs ("Could not remove temporary table ... Unknown table 'mysql.tmp_user_sys'")
    tmp = layout.path("install-tmp")
    os.makedirs(tmp, exist_ok=True)
    cmd = [install_db, "--no-defaults"] + _user_option() + [
        "--datadir=" + template, "--auth-root-authentication-method=normal", "--skip-test-db",
        "--skip-name-resolve", "--tmpdir=" + tmp] + _innodb_options(layout)
    with open(log, "w") as out:
        rc = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    shutil.rmtree(tmp, ignore_errors=True)
    if rc != 0:
        raise MariaDBError("mariadb-install-db failed (exit %d); see %s" % (rc, log))
    return template


class Server:
    """One mariadbd process (a child of the lab daemon)."""

    def __init__(self, layout: Layout, spec: InstanceSpec, mariadbd: str) -> None:
        self.layout, self.spec, self.mariadbd = layout, spec, mariadbd
        self.datadir = layout.datadir(spec)
        self.socket = layout.server_socket(spec)
        self.proc: Optional[subprocess.Popen] = None

    def prepare(self, template: str) -> None:
        """A fresh datadir copied from the template."""
        shutil.rmtree(self.datadir, ignore_errors=True)
        shutil.copytree(template, self.datadir, symlinks=True)

    def command(self) -> List[str]:
        host, port = self.layout.server_address(self.spec)
        d = self.datadir
        cmd = [self.mariadbd, "--no-defaults"] + _user_option() + [
            "--datadir=" + d, "--socket=" + self.socket, "--pid-file=" + os.path.join(d, "mysqld.pid"),
            "--log-error=" + os.path.join(d, "error.log"), "--tmpdir=" + d,
            "--bind-address=" + host, "--port=%d" % port, "--skip-name-resolve",
            "--server-id=%d" % self.spec.index, "--log-bin=mysql-bin", "--log-slave-updates",
            "--binlog-format=ROW", "--gtid-strict-mode=0", "--performance-schema=OFF",
            "--innodb-flush-log-at-trx-commit=2", "--skip-slave-start", "--max-connections=200",
            "--slave-net-timeout=5", "--innodb-use-native-aio=0",
            "--skip-ssl",  # plaintext behind the proxies: they terminate TLS (fiswatch/lab/tls.py) and read queries
        ] + _innodb_options(self.layout)
        if self.spec.initial_role in ("reader", "standby"):
            cmd.append("--read-only")
        if self.spec.cluster == "maz":
            cmd += maz_server_options(self.layout, self.spec)
        return cmd

    def start(self, read_only: bool = False, timeout: float = 60.0) -> None:
        cmd = self.command()
        if read_only and "--read-only" not in cmd:
            cmd.append("--read-only")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, close_fds=True)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise MariaDBError("mariadbd for %s exited with %s at start: %s"
                                   % (self.spec.name, self.proc.returncode, self.error_tail()))
            try:
                conn = root_connect(self.socket, timeout=2)
                conn.close()
                return
            except Exception as exc:  # noqa: BLE001 - not up yet
                last = exc
            time.sleep(0.05)
        raise MariaDBError("mariadbd for %s not ready after %.0fs (%s): %s"
                           % (self.spec.name, timeout, last, self.error_tail()))

    def error_tail(self) -> str:
        path = os.path.join(self.datadir, "error.log")
        try:
            with open(path) as fh:
                lines = [ln.strip() for ln in fh if "[ERROR]" in ln]
        except OSError:
            return "no error log"
        return lines[-1] if lines else "see " + path

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed, nothing said to clients."""
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM, then SIGKILL after `timeout` (a full disk keeps mariadbd waiting for space); False if killed."""
        if not self.alive():
            return True
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return False
        return True


def root_connect(socket_path: str, timeout: float = 5.0, database: Optional[str] = None) -> Any:
    """A PyMySQL connection as root over the server's unix socket (root has no TCP account).

    ssl_disabled: PyMySQL 1.2 otherwise builds a TLS context for every connect (loading the system's
    CA store, ~20 ms of CPU holding the GIL: a stall of every proxy on the lab daemon's loop), for a
    unix socket that never encrypts."""
    import pymysql

    return pymysql.connect(unix_socket=socket_path, user="root", password="", database=database,
                           autocommit=True, connect_timeout=timeout, read_timeout=30, write_timeout=30,
                           ssl_disabled=True)


def sql(socket_path: str, statements: Sequence[Any], timeout: float = 5.0) -> List[Any]:
    """Run statements (str or (str, args)) as root; returns the last statement's rows."""
    conn = root_connect(socket_path, timeout)
    rows: List[Any] = []
    try:
        with conn.cursor() as cur:
            for item in statements:
                if isinstance(item, tuple):
                    cur.execute(item[0], item[1])
                else:
                    cur.execute(item)
                rows = list(cur.fetchall()) if cur.description else []
    finally:
        conn.close()
    return rows


def query_one(socket_path: str, statement: str, args: Any = None) -> Any:
    rows = sql(socket_path, [(statement, args)])
    return rows[0] if rows else None
