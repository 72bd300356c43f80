"""`fiswatch lab exec [--dir DIR] [--aws] -- COMMAND [ARGS...]`: any program against the lab.

COMMAND runs in a private mount namespace where /etc/resolv.conf names the lab's DNS server
(port 53 of its loopback address), so the system resolver (getaddrinfo, the `mysql` client,
Java, Go, ...) answers the lab's names and follows its failovers. Nothing outside changes.
The lab's endpoints and credentials are in COMMAND's environment (ENV_NAMES); with --aws, a
local moto server answers the workshop's Secrets Manager and CloudWatch calls.

Exit codes: COMMAND's own; 128+N when a signal N killed it; 125 when `lab exec` itself
could not run it (no lab, no namespace, no DNS on port 53, --aws without moto); 126 found
but not executable; 127 not found; 2 usage.
"""
import functools
import os
import shutil
import signal
import subprocess
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from fiswatch.output.streams import say as say_line

from fiswatch.lab.exec_error import EXIT_NOEXEC, EXIT_NOTFOUND, ExecError
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36  # orphaned descendants of COMMAND become our children, not init's
SWEEP_GRACE = 2.0  # seconds between SIGTERM and SIGKILL for what COMMAND left running
SI_KERNEL = 0x80  # si_code of a signal the kernel sent: from the terminal, to the whole process group
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
RESOLVER_ENV = ("LOCALDOMAIN", "RES_OPTIONS", "HOSTALIASES")  # would bend the resolver away from the lab
NSCD_SOCKETS = ("/var/run/nscd/socket", "/run/nscd/socket")

# What COMMAND finds in its environment (docs/lab.md lists them).
ENV_NAMES = (
    "FISWATCH_LAB_DIR", "FISWATCH_LAB_DNS", "FISWATCH_LAB_AURORA_HOST", "FISWATCH_LAB_AURORA_READER_HOST",
    "FISWATCH_LAB_RDS_HOST", "FISWATCH_LAB_PORT", "FISWATCH_LAB_USER", "FISWATCH_LAB_PASSWORD",
    "FISWATCH_LAB_DATABASE", "MYSQL_PWD", "FISWATCH_PASSWORD_AURORA", "FISWATCH_PASSWORD_RDS",
    "FISWATCH_LAB_CA", "FISWATCH_LAB_PROXY_HOST",
)

INSTEAD = ("instead, watch the lab with `fiswatch watch --lab`, or give your client the lab's DNS server "
           "%s port %d (e.g. its --nameserver option)")


say = functools.partial(say_line, prefix="fiswatch lab exec: ")  # one line on stderr (fiswatch.output.streams)


def exec_in_lab(lab_dir: str, argv: Sequence[str], aws: bool = False,
                before_wait: Optional[Callable[[], None]] = None) -> int:
    """Run argv against the lab in `lab_dir`; return its exit code (see the module doc).

    Moves THIS process into a private mount namespace first: call it from a process of its
    own (the CLI does), never from one that must keep the machine's resolver.
    """
    from fiswatch.lab import exec_ns

    info, dns_ip = lab_facts(lab_dir)
    executable = find_executable(argv[0], os.environ.get("PATH", os.defpath))
    if aws:
        from fiswatch.lab.exec_aws import require_moto

        require_moto()
    try:
        exec_ns.enter(resolver_files(dns_ip, info.dir))
    except exec_ns.NamespaceError as exc:
        fix = ("allow namespaces here (a container may need CAP_SYS_ADMIN)" if os.geteuid() == 0
               else "run it as root (sudo), or allow unprivileged user namespaces")
        raise ExecError("%s: %s; %s" % (exc, fix, INSTEAD % info.nameserver))
    local_aws = None
    try:
        aws_env: Dict[str, str] = {}
        if aws:
            from fiswatch.lab.exec_aws import LocalAws

            local_aws = LocalAws()
            aws_env = local_aws.start(info.credentials_file, os.environ)
        env = child_environment(os.environ, info, dns_ip, aws_env)
        keep = (local_aws.proc.pid,) if local_aws is not None and local_aws.proc is not None else ()
        return run_child(list(argv), env, executable=executable, before_wait=before_wait, keep=keep)
    finally:
        if local_aws is not None:
            local_aws.stop()


def lab_facts(lab_dir: str):
    """(LabInfo, the address its DNS server answers on at port 53) or ExecError."""
    from fiswatch.lab import api
    from fiswatch.lab.control import ControlError, request
    from fiswatch.lab.layout import CONTROL_SOCKET

    try:
        info = api.lab_status(lab_dir)
        dns53 = request(os.path.join(info.dir, CONTROL_SOCKET), "state", timeout=10).get("dns53")
    except api.LabError as exc:
        raise ExecError(str(exc))
    except ControlError as exc:
        raise ExecError(str(exc))
    if not dns53:
        raise ExecError("the lab in %s predates `lab exec` (no DNS on port 53): restart it with "
                        "`fiswatch lab down --dir %s` and `fiswatch lab up --dir %s`" % (info.dir, info.dir, info.dir))
    if not dns53.get("address"):
        raise ExecError("the lab's DNS server does not answer on port 53 of %s (%s), which /etc/resolv.conf "
                        "needs; restart the lab as root, or %s" % (info.nameserver[0], dns53.get("error"),
                                                                   INSTEAD % info.nameserver))
    check_dns(dns53["address"], info)
    return info, dns53["address"]


def check_dns(ip: str, info: Any) -> None:
    """The lab's DNS server answers the cluster name on ip:53 (asked directly, never the system resolver)."""
    import dns.exception
    import dns.message
    import dns.query

    name = info.endpoint("aurora").host
    try:
        dns.query.udp(dns.message.make_query(name, "A"), ip, port=53, timeout=3)
    except (dns.exception.DNSException, OSError) as exc:
        raise ExecError("the lab's DNS server does not answer on %s port 53 (%s): check `fiswatch lab status "
                        "--dir %s`" % (ip, exc or type(exc).__name__, info.dir))


def find_executable(command: str, path: str) -> str:
    """The file to execute for `command`, like a shell would find it, or ExecError 127/126."""
    if "/" in command:
        if not os.path.exists(command):
            raise ExecError("%s: no such file" % command, EXIT_NOTFOUND)
        if os.path.isdir(command) or not os.access(command, os.X_OK):
            raise ExecError("%s: not an executable file" % command, EXIT_NOEXEC)
        return command
    found = shutil.which(command, path=path)
    if found is None:
        raise ExecError("%s: command not found" % command, EXIT_NOTFOUND)
    return found


def resolver_files(dns_ip: str, lab_dir: str) -> Dict[str, str]:
    """Files to bind in the namespace: target -> text. Pure but for reading the machine's files."""
    files = {"/etc/resolv.conf": resolv_conf_text(dns_ip, lab_dir)}
    for target, rewrite in (("/etc/nsswitch.conf", nsswitch_text), ("/etc/hosts", hosts_text)):
        try:
            with open(target) as fh:
                original = fh.read()
        except OSError:
            continue
        text = rewrite(original)
        if text != original:
            files[target] = text
    for sock in NSCD_SOCKETS:
        if os.path.exists(sock) and not os.path.islink(sock):
            files[sock] = ""  # a cache daemon outside would answer from the machine's resolver
    return files


def resolv_conf_text(dns_ip: str, lab_dir: str) -> str:
    return ("# fiswatch lab exec: only the lab's DNS server (lab in %s)\nnameserver %s\n"
            "options timeout:1 attempts:2\n" % (lab_dir, dns_ip))


def nsswitch_text(original: str) -> str:
    """nsswitch.conf with `hosts: files dns` (no systemd-resolved, mdns or myhostname in the way)."""
    wanted = "hosts:          files dns"
    out, found, changed = [], False, False
    for line in original.splitlines():
        if line.split("#", 1)[0].split(":", 1)[0].strip() == "hosts":
            found = True
            if line.split("#", 1)[0].split(":", 1)[1].split() != ["files", "dns"]:
                line, changed = wanted, True
        out.append(line)
    if not found:
        out.append(wanted)
    return "\n".join(out) + "\n" if changed or not found else original


def hosts_text(original: str) -> str:
    """/etc/hosts without lines naming the lab's zone (they would shadow its DNS answers)."""
    from fiswatch.lab.layout import in_lab_zone

    def names_lab(line: str) -> bool:
        words = line.split("#", 1)[0].split()[1:]
        return any(in_lab_zone(w) for w in words)

    lines = original.splitlines(True)
    kept = [line for line in lines if not names_lab(line)]
    return original if len(kept) == len(lines) else "".join(kept)


def child_environment(base: Mapping[str, str], info: Any, dns_ip: str,
                      aws_env: Mapping[str, str]) -> Dict[str, str]:
    """COMMAND's environment: the caller's, plus the lab's facts; with --aws, no real AWS at all."""
    env = {k: v for k, v in base.items() if k not in RESOLVER_ENV}
    aurora, rds = info.endpoint("aurora"), info.endpoint("rds")
    password = aurora.password.reveal() if aurora.password is not None else ""
    env.update({
        "FISWATCH_LAB_DIR": info.dir, "FISWATCH_LAB_DNS": dns_ip,
        "FISWATCH_LAB_AURORA_HOST": aurora.host, "FISWATCH_LAB_AURORA_READER_HOST": info.reader_endpoint,
        "FISWATCH_LAB_RDS_HOST": rds.host, "FISWATCH_LAB_PORT": str(aurora.port),
        "FISWATCH_LAB_USER": aurora.user, "FISWATCH_LAB_DATABASE": aurora.database or "",
        "FISWATCH_LAB_PASSWORD": password, "MYSQL_PWD": password,
        "FISWATCH_PASSWORD_AURORA": password, "FISWATCH_PASSWORD_RDS": password,
        "FISWATCH_LAB_CA": getattr(info, "ca_file", "") or "",
    })
    if any(ep.name == "aurora-proxy" for ep in info.endpoints):  # lab up --proxy: the RDS Proxy by name
        env["FISWATCH_LAB_PROXY_HOST"] = info.endpoint("aurora-proxy").host
    if "maz" in getattr(info, "shapes", ()):  # lab up --multi-az-cluster
        env.update({"FISWATCH_LAB_MAZ_HOST": info.endpoint("maz").host,
                    "FISWATCH_LAB_MAZ_READER_HOST": info.maz_reader_endpoint, "FISWATCH_PASSWORD_MAZ": password})
    if aws_env:
        env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
        env.update(aws_env)
    return env


def exit_code(returncode: int) -> int:
    """A shell's view of a child's end: its code, or 128+N for signal N."""
    return 128 - returncode if returncode < 0 else returncode


def run_child(argv: List[str], env: Dict[str, str], executable: Optional[str] = None,
              before_wait: Optional[Callable[[], None]] = None, keep: Sequence[int] = ()) -> int:
    """Run argv in the foreground; forward signals sent to us; return its exit code.

    Signals the terminal sends (Ctrl-C, Ctrl-\\) reach COMMAND directly, as it shares our
    process group: those are not sent twice. Signals another process sends to us (kill PID)
    are forwarded. When COMMAND ends, every process it left behind (background children,
    daemons that double-forked or called setsid: as a child subreaper we inherit them all)
    gets SIGTERM, then SIGKILL after SWEEP_GRACE seconds; `keep` are our own helpers.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    waited = set(FORWARDED) | {signal.SIGCHLD}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, waited)

    def in_child() -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)  # never outlive a killed `lab exec`

    try:
        try:
            proc = subprocess.Popen(argv, executable=executable, env=env, close_fds=True, preexec_fn=in_child)
        except FileNotFoundError:
            raise ExecError("%s: command not found" % argv[0], EXIT_NOTFOUND)
        except OSError as exc:
            raise ExecError("%s: cannot execute: %s" % (argv[0], exc.strerror or exc), EXIT_NOEXEC)
        if before_wait is not None:
            before_wait()  # e.g. the failover schedule (lab/gate.py): threads only now, after unshare
        while proc.poll() is None:
            got = signal.sigtimedwait(waited, 0.5)
            if got is None or got.si_signo == signal.SIGCHLD:
                continue
            if got.si_code == SI_KERNEL or got.si_pid == proc.pid:
                continue  # from the terminal: COMMAND got it too
            try:
                os.kill(proc.pid, got.si_signo)
            except ProcessLookupError:
                pass
        left = sweep(set(keep))
        if left:
            say("ended %d process%s %s left running: %s" % (
                len(left), "" if len(left) == 1 else "es", os.path.basename(argv[0]),
                ", ".join("%s (pid %d)" % (name, pid) for pid, name in left[:5])))
        while signal.sigtimedwait(waited, 0) is not None:
            pass  # drop what arrived as it ended, so nothing hits us once unblocked
        return exit_code(proc.returncode)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def _proc_table() -> Dict[int, Tuple[int, str]]:
    """pid -> (ppid, name) of every live (non-zombie) process we can see."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as fh:
                text = fh.read()
        except OSError:
            continue
        name = text[text.find("(") + 1:text.rfind(")")]
        fields = text[text.rfind(")") + 2:].split()
        if len(fields) > 1 and fields[0] != "Z":
            table[int(entry)] = (int(fields[1]), name)
    return table


def descendants(root: int, keep: Set[int]) -> List[Tuple[int, str]]:
    """(pid, name) of every live descendant of `root`, leaving out `keep` and theirs."""
    table = _proc_table()
    children: Dict[int, List[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        if pid in keep:
            continue
        found.append((pid, table[pid][1]))
        todo.extend(children.get(pid, ()))
    return found


def _reap(pids: Sequence[int]) -> None:
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def sweep(keep: Set[int]) -> List[Tuple[int, str]]:
    """End every process COMMAND left behind (our descendants but `keep`): SIGTERM, SIGKILL after
    SWEEP_GRACE; returns those found (pid, name)."""
    import time

    first = descendants(os.getpid(), keep)
    ended = {pid: name for pid, name in first}
    deadline = time.monotonic() + SWEEP_GRACE
    sig = signal.SIGTERM
    while True:
        left = descendants(os.getpid(), keep)
        if not left:
            break
        ended.update(left)
        for pid, _ in left:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
        _reap([pid for pid, _ in left])
        if sig == signal.SIGTERM and time.monotonic() >= deadline:
            sig = signal.SIGKILL
        if time.monotonic() >= deadline + 10:
            break
    return sorted(ended.items())
