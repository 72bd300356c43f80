"""`fiswatch lab exec`: a program's system resolver answers the lab's names; nothing outside changes.

Every program here runs as a real process under the real CLI against the session's lab
(tests/_lab_fixture.py). The machine's /etc/resolv.conf is only read, never written: the
namespace is the place where another one is bound.
"""
import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from conftest import ROOT, wait_for

from _lab_fixture import lab_processes, pick_lab_addresses

from fiswatch import events as E

pytestmark = pytest.mark.lab

RESOLVE = textwrap.dedent("""\
    import socket, sys
    print("resolv.conf", " ".join(open("/etc/resolv.conf").read().split("nameserver", 1)[1].split()[:1]), flush=True)
    for line in sys.stdin:
        try:
            print("addr", socket.getaddrinfo(line.strip(), 3306, type=socket.SOCK_STREAM)[0][4][0], flush=True)
        except socket.gaierror as exc:
            print("addr none", exc.errno, flush=True)
""")


def _env(tmp_path, **extra):
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    env = dict(os.environ, PYTHONPATH=ROOT, TMPDIR=str(tmp))
    env.update(extra)
    return env


def _exec_argv(lab_dir, *command, aws=False):
    return ([sys.executable, "-m", "fiswatch", "lab", "exec", "--dir", lab_dir] + (["--aws"] if aws else [])
            + ["--"] + list(command))


def _run(lab_dir, tmp_path, *command, aws=False, env=None, timeout=120):
    return subprocess.run(_exec_argv(lab_dir, *command, aws=aws), capture_output=True, text=True,
                          env=env or _env(tmp_path), timeout=timeout)


def _readline(stream, timeout=60.0):
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "no line within %.0fs" % timeout
    return stream.readline().strip()


def _machine_resolv():
    """What the machine (pid 1's mount namespace) has at /etc/resolv.conf: bytes, inode, mounts on it."""
    st = os.stat("/etc/resolv.conf")
    with open("/etc/resolv.conf", "rb") as fh:
        data = fh.read()
    with open("/proc/1/mountinfo") as fh:
        mounts = [line for line in fh if "resolv.conf" in line]
    return data, (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size), mounts


def _no_leftovers(tmp_path):
    assert os.listdir(str(tmp_path / "tmp")) == []  # the bound files were unlinked at once
    for mountinfo in ("/proc/1/mountinfo", "/proc/self/mountinfo"):
        with open(mountinfo) as fh:
            assert "fiswatch-exec" not in fh.read()


def _lab_cli(*args):
    return subprocess.run([sys.executable, "-m", "fiswatch", "lab"] + list(args), capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT), timeout=180)


def test_system_resolver_follows_the_cluster_name_through_a_failover(lab, tmp_path):
    from fiswatch.lab.api import lab_status

    before = _machine_resolv()
    cluster = lab.endpoint("aurora").host
    writer = lab_status(lab.dir).instance("aurora", "writer")
    proc = subprocess.Popen(_exec_argv(lab.dir, sys.executable, "-c", RESOLVE), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path))
    try:
        assert _readline(proc.stdout) == "resolv.conf %s" % lab.nameserver[0]
        proc.stdin.write(cluster + "\n")
        proc.stdin.flush()
        assert _readline(proc.stdout) == "addr " + writer.address
        assert _machine_resolv() == before  # during

        failover = _lab_cli("failover", "aurora", "--dir", lab.dir)
        assert failover.returncode == 0, failover.stderr
        new_writer = lab_status(lab.dir).instance("aurora", "writer")
        assert new_writer.address != writer.address

        def resolves_to_new_writer():
            proc.stdin.write(cluster + "\n")
            proc.stdin.flush()
            return _readline(proc.stdout) == "addr " + new_writer.address

        wait_for(resolves_to_new_writer, timeout=30, interval=0.5, message="the new writer's address")
        assert _machine_resolv() == before
        proc.stdin.close()
        assert proc.wait(30) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _machine_resolv() == before  # after
    _no_leftovers(tmp_path)


def test_environment_names_the_lab_and_mysql_client_works(lab, tmp_path):
    code = "import json, os; print(json.dumps({k: v for k, v in os.environ.items() if k.startswith(('FISWATCH', 'MYSQL'))}))"
    result = _run(lab.dir, tmp_path, sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr
    env = json.loads(result.stdout)
    password = lab.endpoint("aurora").password.reveal()
    assert env["FISWATCH_LAB_AURORA_HOST"] == lab.endpoint("aurora").host
    assert env["FISWATCH_LAB_RDS_HOST"] == lab.endpoint("rds").host
    assert env["FISWATCH_LAB_AURORA_READER_HOST"] == lab.reader_endpoint
    assert env["FISWATCH_LAB_PASSWORD"] == env["MYSQL_PWD"] == password
    assert env["FISWATCH_LAB_DNS"] == lab.nameserver[0]
    # a stock client, by name, through the system resolver
    mysql = _run(lab.dir, tmp_path, "mysql", "-h", lab.endpoint("rds").host, "-u", env["FISWATCH_LAB_USER"],
                 env["FISWATCH_LAB_DATABASE"], "-N", "-e", "SELECT 1+1")
    assert mysql.returncode == 0, mysql.stderr
    assert mysql.stdout.strip() == "2"
    _no_leftovers(tmp_path)


def test_exit_codes_pass_through(lab, tmp_path):
    assert _run(lab.dir, tmp_path, "sh", "-c", "exit 7").returncode == 7
    assert _run(lab.dir, tmp_path, "sh", "-c", "kill -KILL $$").returncode == 128 + signal.SIGKILL
    assert _run(lab.dir, tmp_path, "true").returncode == 0

    missing = _run(lab.dir, tmp_path, "no-such-program-xyz", "--flag")
    assert missing.returncode == 127
    assert missing.stderr == "fiswatch lab exec: no-such-program-xyz: command not found\n"
    script = tmp_path / "not-executable.sh"
    script.write_text("echo hi\n")
    script.chmod(0o644)
    noexec = _run(lab.dir, tmp_path, str(script))
    assert noexec.returncode == 126 and noexec.stderr.count("\n") == 1 and "not an executable" in noexec.stderr

    usage = subprocess.run(_exec_argv(lab.dir)[:-1], capture_output=True, text=True, env=_env(tmp_path))
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1 and "COMMAND" in usage.stderr
    nolab = _run(str(tmp_path / "nolab"), tmp_path, "true")
    assert nolab.returncode == 125 and nolab.stderr.count("\n") == 1 and "no lab runs in" in nolab.stderr
    _no_leftovers(tmp_path)


TRAP = textwrap.dedent("""\
    import signal, sys, time
    got = []
    signal.signal(signal.SIG%s, lambda n, f: got.append(n))
    print("ready", flush=True)
    while not got:
        time.sleep(0.05)
    time.sleep(1.0)  # a second copy of the signal would land here
    print("signals", len(got), flush=True)
    sys.exit(42)
""")


def test_a_signal_sent_to_lab_exec_reaches_the_program(lab, tmp_path):
    proc = subprocess.Popen(_exec_argv(lab.dir, sys.executable, "-c", TRAP % "TERM"), stdout=subprocess.PIPE,
                            text=True, env=_env(tmp_path))
    assert _readline(proc.stdout) == "ready"
    proc.send_signal(signal.SIGTERM)
    assert _readline(proc.stdout) == "signals 1"
    assert proc.wait(30) == 42

    sleeper = subprocess.Popen(_exec_argv(lab.dir, "sleep", "60"), env=_env(tmp_path))
    import psutil

    def sleep_child():
        try:
            found = [c for c in psutil.Process(sleeper.pid).children() if c.name() == "sleep"]
        except psutil.NoSuchProcess:
            return None
        return found and found[0]

    child = wait_for(sleep_child, message="sleep to start")
    sleeper.send_signal(signal.SIGTERM)
    assert sleeper.wait(30) == 128 + signal.SIGTERM
    assert not psutil.pid_exists(child.pid) or child.status() == psutil.STATUS_ZOMBIE
    _no_leftovers(tmp_path)


def _in_pty(argv, env, send, until):
    """Run argv on a new pseudo-terminal, type `send` once `until` shows; (output, exit code)."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child execs at once
        try:
            os.execve(argv[0], argv, env)
        finally:
            os._exit(111)
    out = b""
    try:
        deadline = time.monotonic() + 60
        while until.encode() not in out and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1)
            if ready:
                out += os.read(fd, 4096)
        os.write(fd, send)
        while True:
            ready, _, _ = select.select([fd], [], [], 60)
            try:
                chunk = os.read(fd, 4096) if ready else b""
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    return out.decode("utf-8", "replace"), code


def test_ctrl_c_on_the_terminal_reaches_the_program_once(lab, tmp_path):
    env = _env(tmp_path)
    out, code = _in_pty(_exec_argv(lab.dir, sys.executable, "-c", TRAP % "INT"), env, b"\x03", "ready")
    assert "signals 1" in out and code == 42, out
    out, code = _in_pty(_exec_argv(lab.dir, "sh", "-c", "echo ready; exec sleep 60"), env, b"\x03", "ready")
    assert code == 128 + signal.SIGINT, out
    _no_leftovers(tmp_path)


AWS_PROGRAM = textwrap.dedent("""\
    import json, os, boto3, pymysql
    sm = boto3.client("secretsmanager")
    out = {"env": sorted(k for k in os.environ if k.startswith("AWS_"))}
    for name in ("FisAuroraSecret", "FisMysqlSecret"):
        secret = json.loads(sm.get_secret_value(SecretId=name)["SecretString"])
        conn = pymysql.connect(host=secret["host"], port=secret["port"], user=secret["username"],
                               password=secret["password"], database=secret["dbname"], connect_timeout=5)
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM test")
            out[name] = {"keys": sorted(secret), "host": secret["host"], "count": cur.fetchone()[0]}
        conn.close()
    cw = boto3.client("cloudwatch")
    cw.put_metric_data(Namespace="fisworkshop", MetricData=[{"MetricName": "aurora_interactions_per_second",
                       "Value": 12.0, "Unit": "Count", "StorageResolution": 1}])
    out["metrics"] = [m["MetricName"] for m in cw.list_metrics(Namespace="fisworkshop")["Metrics"]]
    out["endpoint"] = os.environ["AWS_ENDPOINT_URL"]
    print(json.dumps(out))
""")


def test_aws_program_reads_both_secrets_and_connects_with_them(lab, tmp_path):
    import psutil

    env = _env(tmp_path, AWS_PROFILE="real-account", AWS_SESSION_TOKEN="real-token", AWS_ROLE_ARN="arn:real")
    result = _run(lab.dir, tmp_path, sys.executable, "-c", AWS_PROGRAM, aws=True, env=env)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["FisAuroraSecret"]["host"] == lab.endpoint("aurora").host
    assert out["FisMysqlSecret"]["host"] == lab.endpoint("rds").host
    assert "dbClusterIdentifier" in out["FisAuroraSecret"]["keys"]
    assert "dbInstanceIdentifier" in out["FisMysqlSecret"]["keys"]
    assert {"username", "password", "host", "port", "dbname", "engine"} <= set(out["FisAuroraSecret"]["keys"])
    assert out["metrics"] == ["aurora_interactions_per_second"]
    assert out["endpoint"].startswith("http://127.0.0.1:")
    for gone in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN"):
        assert gone not in out["env"]
    assert "AWS_EC2_METADATA_DISABLED" in out["env"]
    assert lab.endpoint("aurora").password.reveal() not in result.stderr
    # this run's moto server only (it inherits TMPDIR): other test processes run `lab exec --aws` too
    servers = []
    for p in psutil.process_iter(["cmdline"]):
        if "fiswatch.lab.exec_aws" in " ".join(p.info["cmdline"] or ()):
            try:
                if p.environ().get("TMPDIR") == env["TMPDIR"]:
                    servers.append(p)
            except psutil.NoSuchProcess:
                pass
    assert servers == []
    _no_leftovers(tmp_path)


def test_aws_without_moto_says_how_to_install_it(lab, tmp_path):
    code = ("import sys; sys.modules['moto'] = None; from fiswatch.cli import main; "
            "main(['lab', 'exec', '--dir', %r, '--aws', '--', 'true'])" % lab.dir)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(tmp_path),
                            timeout=60)
    assert result.returncode == 125
    assert result.stderr.count("\n") == 1 and "pip install 'fiswatch[lab-aws]'" in result.stderr
    _no_leftovers(tmp_path)


def test_without_namespace_privileges_one_line_says_what_to_do(lab, tmp_path):
    """A real denial: root without capabilities, in a user namespace whose limit for new ones is 0."""
    inner = "echo 0 > /proc/sys/user/max_user_namespaces && exec setpriv --bounding-set=-all --inh-caps=-all \"$@\""
    argv = ["unshare", "--user", "--map-root-user", "sh", "-c", inner, "sh"] + _exec_argv(lab.dir, "true")
    result = subprocess.run(argv, capture_output=True, text=True, env=_env(tmp_path), timeout=60)
    assert result.returncode == 125, result.stderr
    line = result.stderr
    assert line.count("\n") == 1 and line.startswith("fiswatch lab exec: cannot make a private mount namespace")
    assert "user namespaces are not available" in line and "fiswatch watch --lab" in line
    assert "%s port %d" % lab.nameserver in line
    _no_leftovers(tmp_path)


def test_port_53_taken_lab_still_starts_and_exec_says_so(tmp_path):
    from fiswatch.lab.api import lab_down, lab_up

    base, port, dns_port = pick_lab_addresses()
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind((base + ".53", 53))
    lab_dir = str(tmp_path / "lab")
    try:
        info = lab_up(lab_dir, base=base, port=port, dns_port=dns_port)
        result = _run(info.dir, tmp_path, "true")
    finally:
        blocker.close()
        lab_down(lab_dir)
    assert result.returncode == 125
    assert result.stderr.count("\n") == 1
    assert "port 53 of %s.53 is taken" % base in result.stderr and "fiswatch watch --lab" in result.stderr
    assert not lab_processes(lab_dir)
    _no_leftovers(tmp_path)


FOLLOW = textwrap.dedent("""\
    import os, socket, time
    while True:
        try:
            print("addr", socket.getaddrinfo(os.environ["FISWATCH_LAB_AURORA_HOST"], 3306)[0][4][0], flush=True)
        except socket.gaierror:
            print("addr none", flush=True)
        time.sleep(0.3)
""")


def test_demo_exec_runs_the_program_through_the_demos_failover(lab, tmp_path):
    import psutil

    from fiswatch.lab.api import lab_status

    program = tmp_path / "follow_fiswatch_demo.py"
    program.write_text(FOLLOW)
    writer = lab_status(lab.dir).instance("aurora", "writer")
    record = tmp_path / "run.jsonl"
    argv = [sys.executable, "-m", "fiswatch", "demo", "--dir", lab.dir, "--json", "--duration", "60",
            "--aurora-after", "2", "--rds-after", "1000", "--no-verify", "--record", str(record),
            "--exec", "%s %s" % (sys.executable, program)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path))
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()

    def seen_through():
        """The failover done and the program shown an address other than the old writer's."""
        shown = [json.loads(line) for line in list(lines) if line.startswith("{")]
        done = any(e["event"] == E.LAB and e.get("target") == "aurora" and e.get("step") == "done" for e in shown)
        moved = any(e["event"] == E.INFO and e.get("message", "").startswith("exec: addr ")
                    and e["message"].split()[2] not in (writer.address, "none") for e in shown)
        return done and moved

    try:
        wait_for(seen_through, timeout=120, message="the failover done and the program on the new address")
        # --duration 60 is only the bound (with 24 a loaded run ended the demo before the failover was done);
        # once seen, SIGTERM ends the demo like q (exit 0, the program stopped)
        proc.send_signal(signal.SIGTERM)
        stderr = proc.communicate(timeout=120)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    assert proc.returncode == 0, stderr
    stdout = "".join(lines)
    events = [json.loads(line) for line in lines if line.startswith("{")]
    messages = [e.get("message", "") for e in events if e["event"] == E.INFO]
    new_writer = lab_status(lab.dir).instance("aurora", "writer")
    assert new_writer.address != writer.address
    assert any(m.startswith("exec: ") and "started" in m for m in messages)
    seen = [m.split()[2] for m in messages if m.startswith("exec: addr")]
    assert writer.address in seen and new_writer.address in seen, seen
    assert seen.index(new_writer.address) > seen.index(writer.address)
    assert any(e["event"] == E.LAB and e["step"] == "dns_flip" for e in events)
    log = (tmp_path / "run-exec.log").read_text()
    assert "addr " + new_writer.address in log
    assert lab.endpoint("aurora").password.reveal() not in log + stdout + record.read_text()
    left = [p for p in psutil.process_iter(["cmdline"]) if str(program) in " ".join(p.info["cmdline"] or ())]
    assert left == []


def test_demo_exec_bad_command_is_a_usage_error(tmp_path):
    for bad, words in (("no-such-program-xyz --x", "command not found"), ("'unclosed", "--exec"), ("", "needs a command")):
        result = subprocess.run([sys.executable, "-m", "fiswatch", "demo", "--dir", str(tmp_path / "nolab"),
                                 "--exec", bad], capture_output=True, text=True, env=_env(tmp_path), timeout=60)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and words in result.stderr
    assert not os.path.exists(str(tmp_path / "nolab"))  # no lab was started for a bad command


def test_resolver_files_are_what_the_namespace_needs():
    from fiswatch.lab.exec import hosts_text, nsswitch_text, resolv_conf_text

    assert "nameserver 127.0.10.53\n" in resolv_conf_text("127.0.10.53", "/lab")
    plain = "passwd: files\nhosts:          files dns\n"
    assert nsswitch_text(plain) is plain
    changed = nsswitch_text("passwd: files systemd\nhosts: files mdns4_minimal [NOTFOUND=return] resolve dns\n")
    assert changed == "passwd: files systemd\nhosts:          files dns\n"
    assert nsswitch_text("passwd: files\n").endswith("hosts:          files dns\n")
    hosts = "127.0.0.1 localhost\n127.0.10.9 fiswatch-lab.cluster-c0ffee.lab.rds.local\n"
    from fiswatch.lab.exec_demo import mask, shape

    assert shape("04:11:51 127.0.77.2 insert id 1276") == shape("04:11:52 127.0.77.2 insert id 1277")
    assert shape("04:11:51 127.0.77.2 insert id 1276") != shape("04:11:51 127.0.77.1 insert id 1276")
    assert shape("04:11:51 127.0.77.2 insert id 1276") != shape("04:11:51 127.0.77.2 error 2013")
    assert mask("password is s3cret!", "s3cret!") == "password is ***"
    assert hosts_text(hosts) == "127.0.0.1 localhost\n"
    assert hosts_text("127.0.0.1 localhost\n") == "127.0.0.1 localhost\n"
    new = "127.0.0.1 localhost\n127.0.10.9 fiswatch-lab.cluster-c0ffee0c0ffe.lab-1.rds.amazonaws.com\n"
    assert hosts_text(new) == "127.0.0.1 localhost\n"  # the AWS-shaped names too, only the lab's region
    other = "127.0.0.1 localhost\n10.0.0.9 db.cluster-abc.us-east-1.rds.amazonaws.com\n"
    assert hosts_text(other) == other


def test_killing_lab_exec_leaves_no_program_and_no_moto(lab, tmp_path):
    import psutil

    def gone(pid):
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    proc = subprocess.Popen(_exec_argv(lab.dir, "sleep", "60", aws=True), env=_env(tmp_path))
    try:
        parent = psutil.Process(proc.pid)

        def started():
            # a child between fork() and exec() still shows lab exec's command line: wait for both
            # commands, not for two children
            children = parent.children()
            try:
                commands = sorted(" ".join(c.cmdline()[-2:]) for c in children)
            except psutil.NoSuchProcess:
                return None
            return commands == ["-m fiswatch.lab.exec_aws", "sleep 60"] and children
        children = wait_for(started, timeout=60, message="moto and sleep to start")
    finally:
        proc.kill()  # SIGKILL: lab exec cannot clean up; the kernel and moto's stdin do
        proc.wait()
    for child in children:
        wait_for(lambda: gone(child.pid), timeout=30, message="pid %d to end" % child.pid)
    _no_leftovers(tmp_path)


def test_not_root_runs_in_a_user_namespace_as_itself(lab, tmp_path):
    """uid nobody (allowed to read the root-owned lab dir through DAC capabilities only): a user + mount namespace
    that maps its own uid; glibc's `getent` resolves the cluster name there."""
    from fiswatch.lab.api import lab_status

    before = _machine_resolv()
    caps = "+dac_read_search,+dac_override"
    argv = (["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=" + caps,
             "--ambient-caps=" + caps]
            + _exec_argv(lab.dir, "sh", "-c", "id -u; cat /proc/self/uid_map; getent hosts \"$FISWATCH_LAB_AURORA_HOST\""))
    result = subprocess.run(argv, capture_output=True, text=True, env=_env(tmp_path), timeout=120)
    assert result.returncode == 0, result.stderr
    uid, uid_map, hosts = result.stdout.splitlines()[:3]
    assert uid == "65534" and uid_map.split() == ["65534", "65534", "1"]
    assert hosts.split()[0] == lab_status(lab.dir).instance("aurora", "writer").address
    assert lab.endpoint("aurora").host in hosts.split()
    assert _machine_resolv() == before
    _no_leftovers(tmp_path)
