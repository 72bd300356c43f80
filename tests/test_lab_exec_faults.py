"""`lab exec` under faults: what COMMAND leaves running is ended; a refused namespace names the real errno."""
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT, wait_for

pytestmark = pytest.mark.lab


def _env(tmp_path):
    return dict(os.environ, PYTHONPATH=ROOT, TMPDIR=str(tmp_path))


def _exec(lab_dir, *command):
    return [sys.executable, "-m", "fiswatch", "lab", "exec", "--dir", lab_dir, "--"] + list(command)


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("how", ["sleep 300 & echo $!",  # a background child
                                 "setsid sh -c 'sleep 301 & echo $!' ; sleep 0.2",  # a daemon in its own session
                                 "trap '' TERM; (trap '' TERM; exec sleep 302) & echo $!"])  # one that ignores SIGTERM
def test_everything_command_leaves_running_is_ended(lab, tmp_path, how):
    result = subprocess.run(_exec(lab.dir, "sh", "-c", how), capture_output=True, text=True, env=_env(tmp_path),
                            timeout=120)
    assert result.returncode == 0, result.stderr
    pid = int(result.stdout.split()[0])
    wait_for(lambda: not _alive(pid), timeout=30, message="pid %d ended" % pid)
    assert "fiswatch lab exec: ended 1 process sh left running: sleep (pid %d)" % pid in result.stderr


def test_a_program_that_leaves_nothing_gets_no_line(lab, tmp_path):
    result = subprocess.run(_exec(lab.dir, "sh", "-c", "sleep 0.1 & wait"), capture_output=True, text=True,
                            env=_env(tmp_path), timeout=120)
    assert result.returncode == 0 and result.stderr == ""


def test_namespace_limit_reached_names_the_real_errno_and_limit(lab, tmp_path):
    """Nested user namespaces whose parent allows only one: ENOSPC while the limit visible here is not 0."""
    outer = ("echo 1 > /proc/sys/user/max_user_namespaces && exec unshare --user --map-root-user "
             "setpriv --bounding-set=-all --inh-caps=-all \"$@\"")
    argv = ["unshare", "--user", "--map-root-user", "sh", "-c", outer, "sh"] + _exec(lab.dir, "true")
    result = subprocess.run(argv, capture_output=True, text=True, env=_env(tmp_path), timeout=60)
    assert result.returncode == 125, result.stderr
    line = result.stderr
    assert line.count("\n") == 1 and "user namespaces are not available (ENOSPC, No space left on device" in line
    limit = re.search(r"a limit is reached: user.max_user_namespaces is (\d+), or the nesting depth", line)
    assert limit and int(limit.group(1)) > 0, line
