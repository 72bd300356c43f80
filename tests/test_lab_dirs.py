"""Lab dirs that cannot be used, and labs of another user: one true line, the right exit code, nothing left.

Real faults: a read-only bind mount in a private mount namespace (`unshare -m`), a dir owned by
root used by uid nobody (`setpriv`), the session's root-owned lab asked about by nobody.
"""
import os
import subprocess
import sys
import tempfile

import pytest
from conftest import ROOT

pytestmark = pytest.mark.lab

# uid nobody, allowed to read and search (the interpreter may live under /root) but not to write
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=+dac_read_search",
          "--ambient-caps=+dac_read_search"]


def _env():
    return dict(os.environ, PYTHONPATH=ROOT, HOME="/nonexistent", XDG_STATE_HOME="/nonexistent")


def _run(argv, timeout=120):
    return subprocess.run(argv, capture_output=True, text=True, env=_env(), timeout=timeout, cwd="/")


def _fiswatch(*args):
    return [sys.executable, "-m", "fiswatch"] + list(args)


def _one_line(stderr):
    assert "Traceback" not in stderr and "Error:" not in stderr.split(":", 1)[0], stderr
    assert stderr.count("\n") == 1, stderr
    return stderr.strip()


@pytest.mark.parametrize("option", [["--base", "10.0.0"], ["--port", "0"], ["--dns-port", "70000"]])
def test_up_usage_errors_exit_2_before_anything_and_leave_no_dir(tmp_path, option):
    lab_dir = str(tmp_path / "lab")
    result = _run(_fiswatch("lab", "up", "--dir", lab_dir, *option))
    assert result.returncode == 2, result.stderr
    line = _one_line(result.stderr)
    assert line.startswith("fiswatch lab up: ") and "starting" not in line
    assert not os.path.exists(lab_dir)


def test_up_and_demo_on_a_read_only_bind_mount_exit_2_in_one_line(tmp_path):
    lab_dir = str(tmp_path / "ro")
    os.mkdir(lab_dir)
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    for command in (_fiswatch("lab", "up", "--dir", lab_dir),
                    _fiswatch("demo", "--dir", lab_dir, "--plain", "--duration", "1", "--no-failover")):
        result = _run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", lab_dir] + command)
        assert result.returncode == 2, result.stderr
        line = _one_line(result.stderr)
        assert "cannot write in the lab dir %s (Read-only file system" % lab_dir in line
        assert "choose another --dir" in line and "starting" not in line
    assert os.listdir(lab_dir) == []  # nothing was written through the bind mount either


def test_up_in_a_dir_of_another_user_exits_2_naming_its_owner():
    parent = tempfile.mkdtemp(prefix="fiswatch-rootdir-")
    try:
        os.chmod(parent, 0o755)  # nobody may look, not write
        result = _run(NOBODY + _fiswatch("lab", "up", "--dir", parent))
        assert result.returncode == 2, result.stderr
        line = _one_line(result.stderr)
        assert "cannot write in the lab dir %s (Permission denied; it belongs to user root)" % parent in line
        assert os.listdir(parent) == []
    finally:
        os.rmdir(parent)


def test_another_users_lab_is_not_called_absent(lab):
    """The session's lab runs as root in a root-only dir: nobody is told it belongs to someone else."""
    for args in (["status"], ["down"], ["failover", "aurora"]):
        result = _run(NOBODY + _fiswatch("lab", args[0], "--dir", lab.dir, *args[1:]))
        assert result.returncode == 1, result
        line = _one_line(result.stderr)
        assert "no lab runs" not in line and "nothing to stop" not in line
        assert "the lab in %s belongs to user root: permission denied on its control socket" % lab.dir in line
    from fiswatch.lab.api import lab_status

    assert lab_status(lab.dir).pid == lab.pid  # nobody's `down` stopped nothing


def test_demo_says_what_is_true_of_the_lab_it_leaves(lab, tmp_path):
    from fiswatch.commands.demo import _lab_left
    from fiswatch.lab import api

    assert _lab_left(api, lab.dir) == "the lab keeps running: stop it with `fiswatch lab down --dir %s`" % lab.dir
    assert _lab_left(api, str(tmp_path)) == ("the lab in %s is no longer running (stopped during the demo)"
                                             % tmp_path)
