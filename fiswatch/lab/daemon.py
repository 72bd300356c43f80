"""The lab daemon: owns the mariadbd children, the DNS server and the fault proxies.

Started in the background by `lab_up` (`python -m fiswatch.lab.daemon`); answers JSON
requests on a unix socket in the lab dir (see control.py) and holds `lab.lock` while it
runs. On `shutdown` or SIGTERM it stops everything and removes its socket, state and lock.
"""
import argparse
import fcntl
import json
import os
import secrets
import signal
import socketserver
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Tuple

from fiswatch.lab import aurora
from fiswatch.lab import layout as L
from fiswatch.lab import bluegreen, maz_answers, patch, rdsproxy
from fiswatch.lab.maz_lag import ReplicaLag
from fiswatch.lab.dnsserver import DnsServer, Zone, start_on_standard_port
from fiswatch.lab.bindcheck import LabStartError, check_free
from fiswatch.lab.lablog import log_line
from fiswatch.lab.mariadb import MariaDBError, Server, ensure_template, find_binaries
from fiswatch.lab.orphans import disk_full, waits_for_space
from fiswatch.lab.provision import setup_sql, write_credentials
from fiswatch.lab.proxy import FaultProxy, ProxyLoop
from fiswatch.lab.rdsproxy_account import instance_sessions
from fiswatch.lab.tls import session_factory
from fiswatch.lab.tlsca import cert_file, key_file
from fiswatch.lab.topology import Heartbeat
from fiswatch.lab.wire.accounting import Ledger


STOP_GRACE = 10.0  # seconds each mariadbd gets to shut down before SIGKILL (its data is not kept anyway)


class Lab:
    """Everything the daemon runs, and the requests it answers."""

    def __init__(self, layout: L.Layout) -> None:
        self.layout = layout
        self.loop = ProxyLoop("fiswatch-lab-loop")
        self.zone = Zone(L.ZONE, also=(L.OLD_ZONE,))
        self.dns: Optional[DnsServer] = None
        self.dns53: Optional[DnsServer] = None  # port 53 too, for `lab exec` (resolv.conf names no port)
        self.dns53_error = "not started"
        self.servers: Dict[str, Server] = {}
        self.proxies: Dict[str, FaultProxy] = {}
        self.roles = {spec.name: spec.initial_role for spec in layout.instances}
        self.stopping = threading.Event()
        self.control: Optional[socketserver.BaseServer] = None
        self.lock = threading.Lock()
        self.heartbeat = Heartbeat(lambda: layout.server_socket(self.role_holder("aurora", "writer")),
                                   lambda text: log_line(layout, text))
        self.last_failover: Optional[Dict[str, Any]] = None
        self.maz_lag = ReplicaLag(layout)  # Seconds_Behind_Source of the Multi-AZ cluster's readers
        self.ledger = Ledger()  # wire accounting of every proxied client (lab/wire/accounting.py)
        self.intended_down: set = set()  # servers the lab itself killed: not a dead writer to fail over
        self.rds_proxy: Optional[rdsproxy.RdsProxy] = None  # `lab up --proxy`

    # --- start -------------------------------------------------------------------------
    def start(self) -> None:
        layout = self.layout
        check_free(layout)
        mariadbd, install_db = find_binaries(layout)
        log_line(layout, "lab: initialising MariaDB template")
        template = ensure_template(layout, install_db)
        for spec in layout.instances:
            self.servers[spec.name] = Server(layout, spec, mariadbd)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda s: s.prepare(template), self.servers.values()))
            list(pool.map(lambda s: s.start(), self.servers.values()))
        log_line(layout, "lab: %d mariadbd instances up" % len(self.servers))
        password = secrets.token_urlsafe(18)
        setup_sql(self, password)
        self.heartbeat.start()
        self.maz_lag.start()
        self.loop.start()
        from fiswatch.lab.alter_answers import alter_system_for  # not at the top: crash.py needs failover.py, which needs us

        for spec in layout.instances:
            host, port = layout.proxy_address(spec)
            target = layout.server_address(spec)
            rewriter = aurora.rewriter_factory(aurora.server_id(spec.index), alter_system_for(
                layout, self.roles.get, spec.name)) if spec.cluster == "aurora" else None  # + ALTER SYSTEM
            if spec.cluster == "maz":
                rewriter = maz_answers.rewriter_factory(self.maz_lag.of(spec.name))
            rewriter = bluegreen.rewriter(spec) or rewriter  # green's Aurora instances (lab/bluegreen.py)
            tls = session_factory(cert_file(layout.tls_dir, spec.name), key_file(layout.tls_dir, spec.name), layout.tls)
            self.proxies[spec.name] = FaultProxy(host, port, target[0], target[1], name=spec.name, loop=self.loop,
                                                 session=instance_sessions(self.ledger, spec.name, rewriter, spec.cluster,
                                                                           rdsproxy.listen_hosts(layout)),
                                                 tls=tls).start()
        if layout.rds_proxy:
            self.rds_proxy = rdsproxy.start_for_lab(self, password, lambda text: log_line(layout, text))
        self._publish_dns()
        self.dns = DnsServer(self.zone, layout.dns_address[0], layout.dns_address[1], self.loop).start()
        if layout.dns_port != 53:
            self.dns53, self.dns53_error = start_on_standard_port(self.zone, layout.dns_address[0], self.loop)
            log_line(layout, "lab: DNS on port 53 too" if self.dns53 else "lab: no DNS on port 53: " + self.dns53_error)
        write_credentials(layout, password)
        self._start_control()
        self.write_state()
        from fiswatch.lab.watchdog import WriterWatch

        WriterWatch(self, lambda text: log_line(layout, text)).start()
        log_line(layout, "lab: ready (DNS %s:%d)" % layout.dns_address)

    # --- DNS ---------------------------------------------------------------------------
    def _publish_dns(self) -> None:
        layout = self.layout
        for spec in layout.instances:
            if spec.dns_name:
                self.zone.set(spec.dns_name, "A", (layout.proxy_address(spec)[0],), ttl=5)
        writer = self.role_holder("aurora", "writer")
        self.zone.set(L.ENDPOINT_NAMES["aurora"], "CNAME", (writer.dns_name,), ttl=5)  # type: ignore[arg-type]
        self.publish_readers("aurora")
        if layout.multi_az_cluster:
            self.zone.set(L.MAZ_ENDPOINT_NAMES["maz"], "CNAME", (self.role_holder("maz", "writer").dns_name,), ttl=5)  # type: ignore[arg-type]
            self.publish_readers("maz")
        primary = self.role_holder("rds", "primary")
        self.zone.set(L.ENDPOINT_NAMES["rds"], "A", (layout.proxy_address(primary)[0],), ttl=5)
        self.zone.alias(L.alias_names())  # the old .lab.rds.local names: CNAMEs of the new ones

    def publish_readers(self, cluster: str, extra: Tuple[str, ...] = ()) -> Tuple[str, ...]:
        """The reader endpoint: a random reader per query (TTL 5 s), the writer when no reader is left.

        `extra` names more instances to hand out too (a Multi-AZ failover's new writer, briefly)."""
        readers = tuple(s.dns_name for s in self.layout.cluster(cluster) if self.roles[s.name] == "reader"
                        and s.dns_name and self.servers.get(s.name) is not None and self.servers[s.name].alive())
        values: Tuple[str, ...] = tuple(readers + tuple(v for v in extra if v not in readers)) or \
            (self.role_holder(cluster, "writer").dns_name,)  # type: ignore[assignment]
        self.zone.set(self.layout.endpoint_names[cluster + "-ro"], "CNAME", values, ttl=5, spread=True)
        return values

    def role_holder(self, cluster: str, role: str) -> L.InstanceSpec:
        for spec in self.layout.cluster(cluster):
            if self.roles[spec.name] == role:
                return spec
        raise KeyError(role)

    # --- state ---------------------------------------------------------------------------
    def state(self) -> Dict[str, Any]:
        layout = self.layout
        instances = []
        for spec in layout.instances:
            proxy = self.proxies.get(spec.name)
            server = self.servers.get(spec.name)
            instances.append({
                "name": spec.name, "cluster": spec.cluster, "role": self.roles[spec.name],
                "address": layout.proxy_address(spec)[0], "port": layout.proxy_address(spec)[1],
                "dns_name": spec.dns_name, "proxy_mode": proxy.mode if proxy else None,
                "server_id": L.topology_id(spec),
                "connections": proxy.connection_count() if proxy else 0,
                "server": list(layout.server_address(spec)), "socket": layout.server_socket(spec),
                "running": bool(server and server.alive()),
                "certificate_names": list(L.certificate_names(spec)),
            })
        records = {}
        for name, rec in self.zone.snapshot().items():
            records[name] = {"kind": rec.kind, "values": list(rec.values), "ttl": rec.ttl, "blank": rec.blank,
                             "flap_until": rec.flap_until, "spread": rec.spread}
        return {"pid": os.getpid(), "dir": layout.dir, "layout": layout.to_dict(),
                "nameserver": list(layout.dns_address), "endpoints": layout.endpoint_names,
                "shapes": list(layout.clusters), "readers": layout.readers,
                "dns53": {"address": layout.dns_address[0] if self.dns53 or layout.dns_port == 53 else None,
                          "error": "" if self.dns53 or layout.dns_port == 53 else self.dns53_error},
                "instances": instances, "dns": records, "credentials_file": layout.credentials_file,
                "log_file": layout.log_file, "updated": time.time(),
                "tls": {"policy": layout.tls, "ca_file": layout.ca_file, "expired": layout.tls_expired},
                "cluster_instance_host_pattern": aurora.host_pattern(layout.base, layout.port),
                "last_failover": self.last_failover, "rds_proxy": self.rds_proxy.stats() if self.rds_proxy else None}

    def write_state(self) -> None:
        L.write_private(self.layout.state_file, self.state())

    # --- control -------------------------------------------------------------------------
    def handle(self, request: Dict[str, Any]) -> Dict[str, Any]:
        cmd = request.get("cmd")
        handler: Optional[Callable[[Dict[str, Any]], Any]] = getattr(self, "cmd_" + str(cmd), None)
        if handler is None:
            return {"ok": False, "error": "unknown command %r" % cmd}
        try:
            with self.lock:
                result = handler(request)
        except (KeyError, ValueError, MariaDBError, OSError) as exc:
            return {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)}
        return {"ok": True, "result": result}

    def cmd_ping(self, req: Dict[str, Any]) -> Any:
        return {"pid": os.getpid()}

    def cmd_state(self, req: Dict[str, Any]) -> Any:
        return self.state()

    def cmd_proxy(self, req: Dict[str, Any]) -> Any:
        self.proxies[req["instance"]].set_mode(req["mode"], float(req.get("latency", 0.0)))
        return self.proxies[req["instance"]].mode

    def cmd_dns_blank(self, req: Dict[str, Any]) -> Any:
        self.zone.blank(req["name"], req.get("style"))

    def cmd_dns_set(self, req: Dict[str, Any]) -> Any:
        self.zone.set(req["name"], req["kind"], tuple(req["values"]), int(req.get("ttl", 5)),
                      req.get("flap_until"))

    def cmd_dns_batch(self, req: Dict[str, Any]) -> Any:  # several records in one swap (lab/switchover.py)
        self.zone.update(req["changes"])

    def cmd_kill(self, req: Dict[str, Any]) -> Any:
        self.intended_down.add(req["instance"])
        server = self.servers[req["instance"]]
        server.stop() if req.get("graceful") else server.kill()  # graceful: a reboot (lab/crash.py)
        self._readers_changed(req["instance"])

    def cmd_start(self, req: Dict[str, Any]) -> Any:
        self.servers[req["instance"]].start(read_only=bool(req.get("read_only", True)))
        self.intended_down.discard(req["instance"])
        self._readers_changed(req["instance"])

    def _readers_changed(self, name: str) -> None:
        """A reader stopped or started: its cluster's reader endpoint hands out the live readers."""
        cluster = L.spec_by_name(name).cluster
        if cluster in ("aurora", "maz") and cluster + "-ro" in self.layout.endpoint_names:
            self.publish_readers(cluster)

    def cmd_roles(self, req: Dict[str, Any]) -> Any:
        for name, role in req["roles"].items():
            if name not in self.roles:
                raise KeyError(name)
            self.roles[name] = role
        self.write_state()

    def cmd_heartbeat(self, req: Dict[str, Any]) -> Any:
        """Pause the topology heartbeat for `pause_for` seconds, or resume it."""
        if req.get("pause_for"):
            self.heartbeat.pause(float(req["pause_for"]))
        else:
            self.heartbeat.resume()

    def cmd_readers_dns(self, req: Dict[str, Any]) -> Any:
        """Publish the reader endpoint of `cluster` again from the roles (plus `extra` names)."""
        return list(self.publish_readers(req["cluster"], tuple(req.get("extra") or ())))

    def cmd_failover_state(self, req: Dict[str, Any]) -> Any:
        """What the last (or running) failover did: kept for `lab status`."""
        self.last_failover = dict(req.get("state") or {})
        self.write_state()

    def cmd_patch(self, req: Dict[str, Any]) -> Any:  # zero-downtime patching (lab/patch.py)
        return patch.patch_in_daemon(self, str(req.get("target")), bool(req.get("zdp", True)),
                                     lambda text: log_line(self.layout, text))

    def cmd_wire(self, req: Dict[str, Any]) -> Any:
        """What every client did on the wire so far (lab/wire/accounting.py)."""
        return self.loop.call(self.ledger.snapshot)

    def cmd_shutdown(self, req: Dict[str, Any]) -> Any:
        self.stopping.set()

    def _start_control(self) -> None:
        lab = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline()
                try:
                    request = json.loads(line.decode("utf-8"))
                except ValueError:
                    reply = {"ok": False, "error": "bad request"}
                else:
                    reply = lab.handle(request)
                self.wfile.write((json.dumps(reply) + "\n").encode("utf-8"))

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        path = self.layout.control_socket
        if os.path.exists(path):
            os.unlink(path)
        old = os.umask(0o077)
        try:
            self.control = Server(path, Handler)
        finally:
            os.umask(old)
        threading.Thread(target=self.control.serve_forever, name="lab-control", daemon=True).start()

    # --- stop ----------------------------------------------------------------------------
    def stop(self) -> None:
        self.heartbeat.stop()
        self.maz_lag.stop()
        if self.control is not None:
            self.control.shutdown()
            self.control.server_close()
        for proxy in list(self.proxies.values()) + ([self.rds_proxy] if self.rds_proxy else []):
            proxy.stop()
        self.ledger.close()
        for dns in (self.dns, self.dns53):
            if dns is not None:
                dns.stop()
        self.loop.stop()
        def stop_server(server: Server) -> None:
            if not server.stop(STOP_GRACE):
                log_line(self.layout, "lab: mariadbd of %s did not shut down within %.0fs%s: killed" % (
                    server.spec.name, STOP_GRACE, " (disk full)" if disk_full(self.layout.dir) or waits_for_space(server.datadir) else ""))

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(stop_server, self.servers.values()))
        for path in (self.layout.control_socket, self.layout.state_file):
            try:
                os.unlink(path)
            except OSError:
                pass


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="fiswatch-lab-daemon")
    parser.add_argument("--layout", required=True, help="layout as JSON")
    parser.add_argument("--ready-fd", type=int, default=-1, help="write 'ready' or 'error: ...' here")
    args = parser.parse_args(argv)
    layout = L.Layout.from_dict(json.loads(args.layout))

    def report(text: str) -> None:
        if args.ready_fd >= 0:
            try:
                os.write(args.ready_fd, (text + "\n").encode("utf-8"))
                os.close(args.ready_fd)
            except OSError:
                pass
            args.ready_fd = -1

    os.makedirs(layout.dir, exist_ok=True)
    lock_fd = os.open(layout.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        report("error: a lab already runs in %s: stop it with `fiswatch lab down --dir %s`" % (layout.dir, layout.dir))
        return 1
    os.ftruncate(lock_fd, 0)
    os.write(lock_fd, str(os.getpid()).encode())
    lab = Lab(layout)
    signal.signal(signal.SIGTERM, lambda *a: lab.stopping.set())
    signal.signal(signal.SIGINT, lambda *a: lab.stopping.set())
    rc = 0
    try:
        try:
            lab.start()
        except (LabStartError, MariaDBError, OSError) as exc:
            report("error: %s" % exc)
            log_line(layout, "lab: start failed: %s" % exc)
            rc = 1
        except Exception as exc:  # noqa: BLE001 - a bug: still one line to the user, details in the log
            report("error: lab failed to start (%s: %s); see %s" % (type(exc).__name__, exc, layout.log_file))
            import traceback

            with open(layout.log_file, "a") as fh:
                traceback.print_exc(file=fh)
            rc = 1
        else:
            report("ready")
            while not lab.stopping.wait(1.0):
                pass
            log_line(layout, "lab: shutting down")
    finally:
        lab.stop()
        try:
            os.unlink(layout.lock_file)
        except OSError:
            pass
        os.close(lock_fd)
        if rc == 0:
            log_line(layout, "lab: down")
    return rc


if __name__ == "__main__":
    sys.exit(main())
