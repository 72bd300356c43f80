"""The lab's DNS as every resolver meets it (issue 21, items 14 and 15).

- During a realistic flap, ordinary resolvers see both instances: glibc's getaddrinfo
  (`getent ahosts` asks A and AAAA, `getent ahostsv4` A only) and dnspython, each run
  inside `fiswatch lab exec` against the lab's real DNS server.
- `--stale-dns SECONDS`: the demoted-writer trap. The cluster name keeps naming the old
  writer after it rejoined read-only; a SQLAlchemy pool that reconnects by name lands
  there and gets 1290 on every write, with or without pool_pre_ping, even after DNS
  moved on; a pool that discards a connection on 1290, or recycles it, writes again.
- fiswatch's own probe says `writes refused 1290: on a demoted writer` (--plain, the record).
"""
import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from conftest import ROOT, wait_for

pytestmark = pytest.mark.lab


def _env(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    return dict(os.environ, PYTHONPATH=ROOT, TMPDIR=str(tmp))


def _exec_argv(lab_dir, *command):
    return [sys.executable, "-m", "fiswatch", "lab", "exec", "--dir", lab_dir, "--"] + list(command)


class Background:
    """A failover of the session's lab in a thread; its steps arrive in `steps`."""

    def __init__(self, lab_dir, target="aurora", **kw):
        from fiswatch.lab.api import failover

        self.steps, self.error = [], None

        def run():
            try:
                failover(lab_dir, target, emit=self.steps.append, **kw)
            except Exception as exc:  # seen by the test through join()
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def step(self, name):
        return next((s for s in list(self.steps) if s.get("step") == name), None)

    def join(self, timeout=180):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the failover did not end"
        assert self.error is None, self.error
        return [s.get("step") for s in self.steps]


# --- item 14: the flap, as a resolver's queries meet it --------------------------------------

def test_a_glibc_lookup_pattern_sees_both_answers_during_a_flap():
    """The DNS server's own answers: A+AAAA per lookup (AF_UNSPEC) and A only (AF_INET)."""
    import dns.message
    import dns.rdatatype

    from fiswatch.lab.dnsserver import FLAP_RUN, Zone, answer

    zone = Zone("lab.rds.local")
    zone.set("i1.lab.rds.local", "A", ("127.0.0.1",))
    zone.set("i2.lab.rds.local", "A", ("127.0.0.2",))
    zone.set("db.lab.rds.local", "CNAME", ("i1.lab.rds.local", "i2.lab.rds.local"), flap_until=time.time() + 60)

    def ask(rdtype):
        reply = dns.message.from_wire(answer(zone, dns.message.make_query("db.lab.rds.local", rdtype).to_wire()))
        return [r.address for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A for r in rrset]

    for pattern in (("A", "AAAA"), ("A",), ("AAAA", "A")):
        seen = []
        for _ in range(FLAP_RUN + 1):  # FLAP_RUN + 1 lookups always meet both
            for rdtype in pattern:
                addresses = ask(rdtype)
                if rdtype == "A":
                    seen += addresses
                else:
                    assert addresses == []  # AAAA: the CNAME only, no address
        assert set(seen) == {"127.0.0.1", "127.0.0.2"}, pattern


FLAP_PROBE = textwrap.dedent("""\
    import os, subprocess, sys, time
    import dns.resolver
    name = os.environ["FISWATCH_LAB_AURORA_HOST"]
    resolver = dns.resolver.Resolver()  # /etc/resolv.conf of the namespace: the lab's DNS
    resolver.cache = None
    seen = {"ahosts": set(), "ahostsv4": set(), "dnspython": set()}
    deadline = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < deadline and not all(len(s) >= 2 for s in seen.values()):
        for tool in ("ahosts", "ahostsv4"):
            out = subprocess.run(["getent", tool, name], capture_output=True, text=True).stdout.split()
            if out:
                seen[tool].add(out[0])
                print(tool, out[0], flush=True)
        for rrset in resolver.resolve(name, "A").response.answer:
            for rdata in rrset:
                if hasattr(rdata, "address"):
                    seen["dnspython"].add(rdata.address)
                    print("dnspython", rdata.address, flush=True)
        time.sleep(0.05)
""")


def test_getent_and_dnspython_see_both_instances_during_a_flap(lab, tmp_path):
    from fiswatch.lab.api import lab_status
    from fiswatch.lab.failover import Profile

    before = lab_status(lab.dir)
    old, new = before.instance("aurora", "writer"), before.instance("aurora", "reader")
    # quick timings with a 12 s flap (the realistic profile's is 20 s): each query picks an answer at random,
    # at most FLAP_RUN alike in a row, so the probe sees both within its first queries; 12 s leaves room for a
    # slow start of `lab exec` on a loaded machine, and job.join() below waits for the flap's end
    flapping = Profile("quick-flap", promote_at=1.0, flip_at=2.0, empty_for=0.5, flap_for=12.0, rejoin_at=2.5)
    job = Background(lab.dir, timings=flapping)
    try:
        wait_for(lambda: job.step("dns_flap") or job.error, 60, message="the flap to start")
        assert job.error is None, job.error
        result = subprocess.run(_exec_argv(lab.dir, sys.executable, "-c", FLAP_PROBE, "15"), capture_output=True,
                                text=True, env=_env(tmp_path), timeout=120)
    finally:
        steps = job.join()
    assert result.returncode == 0, result.stderr
    assert "dns_flap" in steps
    seen = {}
    for line in result.stdout.split("\n"):
        if line:
            tool, address = line.split()
            seen.setdefault(tool, set()).add(address)
    for tool in ("ahosts", "ahostsv4", "dnspython"):
        assert seen.get(tool) == {old.address, new.address}, (tool, result.stdout)


# --- item 15: --stale-dns, the demoted-writer trap ---------------------------------------------

POOLS = textwrap.dedent("""\
    import os, sys, threading, time
    import sqlalchemy
    from sqlalchemy import event, text

    url = sqlalchemy.engine.URL.create(
        "mysql+pymysql", username=os.environ["FISWATCH_LAB_USER"], password=os.environ["FISWATCH_LAB_PASSWORD"],
        host=os.environ["FISWATCH_LAB_AURORA_HOST"], port=int(os.environ["FISWATCH_LAB_PORT"]),
        database=os.environ["FISWATCH_LAB_DATABASE"])
    args = {"connect_args": {"connect_timeout": 1, "read_timeout": 1, "write_timeout": 1},
            "pool_size": 1, "max_overflow": 0}
    engines = {
        "plain": sqlalchemy.create_engine(url, **args),
        "pre_ping": sqlalchemy.create_engine(url, pool_pre_ping=True, **args),
        "recycle": sqlalchemy.create_engine(url, pool_recycle=2, **args),
        "discard_1290": sqlalchemy.create_engine(url, **args),
    }

    @event.listens_for(engines["discard_1290"], "handle_error")
    def read_only_means_reconnect(context):
        orig = context.original_exception
        if getattr(orig, "args", None) and orig.args[0] in (1290, 1836):
            context.is_disconnect = True  # the pool throws the connection away; the next one resolves again

    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    while not stop.is_set():
        for name, engine in engines.items():
            try:
                with engine.begin() as conn:
                    conn.execute(text("INSERT INTO test (value) VALUES (1290)"))
                print(time.time(), name, "ok", flush=True)
            except sqlalchemy.exc.DBAPIError as exc:
                print(time.time(), name, "error", exc.orig.args[0], flush=True)
        time.sleep(0.1)
""")


class Output:
    """A subprocess's lines `ts name what [code]`, collected in a thread."""

    def __init__(self, proc):
        self.lines = []
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc):
        for line in proc.stdout:
            parts = line.split()
            if len(parts) >= 3:
                self.lines.append((float(parts[0]), parts[1], parts[2], parts[3] if len(parts) > 3 else None))

    def of(self, name, after=0.0, what=None, code=None):
        return [x for x in list(self.lines) if x[1] == name and x[0] > after and (what is None or x[2] == what)
                and (code is None or x[3] == code)]


def test_stale_dns_traps_a_sqlalchemy_pool_on_the_demoted_writer(lab, tmp_path):
    from fiswatch.lab.api import failover, lab_status

    before = lab_status(lab.dir)
    old = before.instance("aurora", "writer")
    proc = subprocess.Popen(_exec_argv(lab.dir, sys.executable, "-c", POOLS), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path))
    out = Output(proc)
    steps = []
    try:
        for name in ("plain", "pre_ping", "recycle", "discard_1290"):
            wait_for(lambda: out.of(name, what="ok"), 60, message="%s writing before the failover" % name)
        failover(lab.dir, "aurora", emit=steps.append, profile="quick", stale_dns=5)
        at = {s.get("step"): s for s in steps}
        flip = at["dns_flip"].ts
        # the trap: both pools stay on the demoted writer, every write refused, long after DNS moved on
        for name in ("plain", "pre_ping"):
            wait_for(lambda: len(out.of(name, after=flip + 2, code="1290")) >= 3, 60,
                     message="%s: 1290 on every write after the flip" % name)
        # the cures: a pool that drops the connection on 1290, or recycles it, reaches the new writer
        for name in ("discard_1290", "recycle"):
            wait_for(lambda: out.of(name, after=flip, what="ok"), 60, message="%s writing again" % name)
    finally:
        proc.stdin.close()
        try:
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out.thread.join(10)
    assert proc.returncode == 0, proc.stderr.read()

    names = [s.get("step") for s in steps]
    assert names == ["start", "blackhole", "promote", "dns_stale", "rejoin", "dns_flip", "done"]
    assert at["start"].get("stale_dns") == 5.0
    assert 5.0 <= at["dns_flip"].ts - at["rejoin"].ts < 15.0  # the name stayed stale 5 s past the rejoin
    rejoin = at["rejoin"].ts
    assert old.name in at["dns_stale"].get("detail") and "stale" in at["dns_stale"].get("detail")
    for name in ("plain", "pre_ping"):
        refused = out.of(name, after=rejoin, code="1290")
        assert refused, name
        # from its first 1290 on, the pool never wrote again: every write went to the demoted writer
        assert not out.of(name, after=refused[0][0], what="ok"), name
    # the recycling pool too met the demoted writer while the name was stale
    assert out.of("recycle", after=rejoin, code="1290")


def test_probe_column_says_writes_refused_on_a_demoted_writer(lab, tmp_path):
    """The demo with --stale-dns: the PyMySQL probe's --plain line, and the record."""
    record = str(tmp_path / "run.jsonl")
    cmd = [sys.executable, "-m", "fiswatch", "demo", "--dir", lab.dir, "--plain", "--backend", "pymysql",
           "--aurora-after", "8", "--rds-after", "3600", "--stale-dns", "6", "--duration", "120",
           "--record", record]  # 8 s: the probe writes before the fence even on a loaded machine
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT), stdin=subprocess.DEVNULL)
    lines = []
    reader = threading.Thread(target=lambda: [lines.append(line) for line in proc.stdout], daemon=True)
    reader.start()
    text = "aurora/pymysql  writes refused 1290: on a demoted writer"
    try:
        wait_for(lambda: any(line.startswith(text) for line in list(lines)), 90,
                 message="the demoted-writer state line in --plain")
        # then DNS names the new writer and the probe writes there again

        def back_to_ok():
            shown = list(lines)
            last = max(i for i, line in enumerate(shown) if line.startswith(text))
            return any(line.startswith("aurora/pymysql  OK") for line in shown[last:])

        wait_for(back_to_ok, 90, message="the probe back to OK after the stale window")
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
        reader.join(10)
    with open(record) as fh:
        events = [json.loads(line) for line in fh if line.strip()]
    demoted = [e for e in events if e["event"] == "error" and e.get("probe") == "aurora/pymysql"
               and e.get("kind") == "demoted-writer"]
    assert demoted and all(e["code"] == 1290 and e["op"] == "INSERT" for e in demoted)
    # the record's state events are the monitor's per-tick sample of each probe: a change of state makes
    # one, a new error within ERROR does not. Beside two busy loops the tick after the fence's ERROR saw
    # ERROR again (now refused by the demoted writer): no event, while the --plain line (drawn from
    # the same tick's view) said so. Each refusal is in the record as its error event (above).
    assert any(e["event"] == "state" and e.get("probe") == "aurora/pymysql" and e.get("state") == "ERROR"
               and e["ts"] <= demoted[-1]["ts"] for e in events)
    assert any(e["event"] == "lab" and e.get("step") == "dns_stale" for e in events)


def test_stale_dns_usage_errors_exit_2_before_anything(lab, tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT)

    def lab_cli(*args):
        return subprocess.run([sys.executable, "-m", "fiswatch", "lab"] + list(args), capture_output=True,
                              text=True, env=env, timeout=120)

    rds = lab_cli("failover", "rds", "--dir", lab.dir, "--stale-dns", "8")
    assert rds.returncode == 2 and rds.stdout == ""
    assert rds.stderr.strip() == ("fiswatch lab failover: --stale-dns applies to aurora only: an RDS Multi-AZ "
                                  "standby takes no connections, so a stale address meets no demoted writer there")
    for bad in ("-1", "nan", "601", "soon"):
        result = lab_cli("failover", "aurora", "--dir", lab.dir, "--stale-dns", bad)
        assert result.returncode == 2 and "--stale-dns" in result.stderr and "Traceback" not in result.stderr, bad
        assert len(result.stderr.strip().splitlines()) <= 2  # argparse's usage line and the message
    up = lab_cli("up", "--dir", str(tmp_path / "never"), "--stale-dns", "-3")
    assert up.returncode == 2 and not (tmp_path / "never").exists()
    # nothing ran: the lab's last failover is not an rds one started just now
    from fiswatch.lab.api import lab_status

    last = lab_status(lab.dir).failover_status() or {}
    assert not (last.get("target") == "rds" and last.get("stale_dns"))


def test_stale_dns_of_the_lab_applies_to_aurora_failovers_only():
    from fiswatch.lab.layout import Layout, LayoutError, stale_dns_for

    layout = Layout.make("/tmp/fiswatch-layout-only", stale_dns="8")
    assert layout.stale_dns == 8.0 and Layout.from_dict(layout.to_dict()) == layout
    assert stale_dns_for("aurora", None, layout.stale_dns) == 8.0
    assert stale_dns_for("aurora", 0, layout.stale_dns) == 0.0  # a failover can turn it off
    assert stale_dns_for("rds", None, layout.stale_dns) == 0.0
    with pytest.raises(LayoutError):
        Layout.make("/tmp/fiswatch-layout-only", stale_dns=-1)


def test_demoted_writer_state_fits_every_column_of_an_80x24_demo():
    """Five columns on 80x24 (the demo with the wrapper): the state line says it in each width."""
    import dataclasses

    from dashboard_app import WRAPPER, failover_view, probe
    from fiswatch.model import ErrorInfo, State
    from fiswatch.ui.layout import UiState, render

    error = ErrorInfo(1290, "demoted-writer", "The MariaDB server is running with the --read-only option")
    base = failover_view(now=1000.0)
    demoted = [probe("aurora", "pymysql", State.RECONNECTING, address="127.0.10.11", error=error)]
    wrapper = [probe("aurora", "aws-wrapper", info=WRAPPER, address="127.0.10.12")]
    view = dataclasses.replace(base, probes=base.probes[:1] + tuple(demoted + wrapper) + base.probes[2:])
    for width, height, shown in ((80, 24, "1290 on a demoted writer"), (120, 40, "1290 demoted writer"),
                                 (200, 40, "writes refused 1290: demoted writer"),
                                 (220, 40, "writes refused 1290: on a demoted writer")):
        texts = [line.text for line in render(view, width, height, UiState(), 1000.0)]
        assert all(len(t) <= width for t in texts)
        assert any(shown in t for t in texts), (width, texts)


def test_a_stale_dns_failover_stopped_in_its_stale_window_is_finished(lab):
    """Quitting (the demo's cancel) while the name is stale: DNS names the new writer at once."""
    from _lab_fixture import answer_of
    from fiswatch.lab.api import LabError, lab_status

    before = lab_status(lab.dir)
    new = before.instance("aurora", "reader")
    cancel = threading.Event()
    job = Background(lab.dir, profile="quick", stale_dns=60, cancel=cancel)
    wait_for(lambda: job.step("rejoin") or job.error, 60, message="the old writer back while the name is stale")
    assert answer_of(lab, lab.endpoint("aurora").host)[1] == [before.instance("aurora", "writer").address]
    cancel.set()
    job.thread.join(120)
    assert isinstance(job.error, LabError) and "finished at step rejoin (cancelled)" in str(job.error)
    assert answer_of(lab, lab.endpoint("aurora").host)[:2] == ("ok", [new.address])
    after = lab_status(lab.dir)
    assert after.instance("aurora", "writer").name == new.name
    assert after.failover_status()["state"] == "finished" and after.failover_status()["stale_dns"] == 60.0


def test_a_read_only_server_the_probe_never_wrote_to_is_not_called_a_demoted_writer(lab):
    """fiswatch says 'demoted writer' only when it knows: its writes committed there before."""
    import dataclasses

    from fiswatch.backends.registry import parse_backend_spec
    from fiswatch.engine.runner import RunOptions, Runner
    from fiswatch.lab.api import lab_status

    reader = lab_status(lab.dir).instance("aurora", "reader")
    endpoint = dataclasses.replace(lab.endpoint("aurora"), host=reader.address)  # a reader, by its address
    runner = Runner([endpoint], [parse_backend_spec("pymysql")],
                    RunOptions(interval=0.05, stall_after=2.0, nameserver=tuple(lab.nameserver)))
    runner.start()
    probe = runner.probes[0]
    try:
        error = wait_for(lambda: probe.snapshot.errors >= 3 and probe.snapshot.last_error, 60,
                         message="writes refused by the reader")
    finally:
        runner.stop()
        probe.join(5)
    assert (error.code, error.kind) == (1290, "read-only")
    assert probe.snapshot.iterations == 0


def test_dashboard_on_80x24_shows_the_demoted_writer(lab, tmp_path):
    """The demo's own dashboard in a real 80x24 pty, default probes, `--stale-dns 6`."""
    from fiswatch.bench.ptyrun import PtyChild

    argv = [sys.executable, "-m", "fiswatch", "demo", "--dir", lab.dir, "--aurora-after", "1", "--rds-after", "3600",
            "--stale-dns", "6", "--duration", "120", "--record", str(tmp_path / "pty.jsonl")]
    child = PtyChild(argv, dict(os.environ, PYTHONPATH=ROOT), cols=80, rows=24, screen=True)
    from fiswatch.ui.text import demoted_candidates

    # the widest form that fits: with the wrapper (Python >= 3.10) 5 probes in two bands, Aurora's 3
    # columns 26 wide ("1290 on a demoted writer"); without it 4 columns of 19 ("1290 demoted writer")
    shown = demoted_candidates(1290)[:-1]
    seen = child.watch(lambda text: any(form in line for line in text.split("\n") for form in shown))
    # the event log says it too; its line may come a frame after the column's (the probe publishes its
    # state, then emits the error event, which the next tick draws), so each is watched for on its own
    logged = child.watch(lambda text: "error 1290 demoted-writer in INSERT" in text)
    try:
        wait_for(lambda: child.seen_at(seen) is not None, 90, interval=0.2,
                 message="the demoted-writer state on the 80x24 dashboard")
        wait_for(lambda: child.seen_at(logged) is not None, 30, interval=0.2,
                 message="the demoted writer's error in the dashboard's event log")
        screen = child.text()
    finally:
        child.send(b"q")
        child.wait(60)
        child.kill()
    lines = screen.split("\n")
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
