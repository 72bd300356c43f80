"""The benchmark harness in its quick mode (tests/_bench_quick.py), figures 1, 2, 4, 5 and 6 (figure 3 is in
test_bench_quick_lab.py, figure 7 in test_bench_quick_memory.py: three modules, three xdist workers), and
the standalone figures reached by name."""
import subprocess
import sys

import pytest

from _bench_quick import run_quick_bench

pytestmark = pytest.mark.slow  # subprocesses: a minute, not seconds


def test_quick_bench_produces_figures_1_2_4_5_6(tmp_path, mariadb):
    table = run_quick_bench(tmp_path, [1, 2, 4, 5, 6], (
        "mysql-connector probe/bare", "pymysql probe/bare", "p95 latency", "frame 16 probes 200x60",
        "dashboard CPU beyond --plain", "share of target rate", "fiswatch --help", "watch to first frame with rows"))
    assert "share of target rate" in table


def test_the_standalone_figures_are_reached_from_python_m_fiswatch_bench():
    """`python -m fiswatch.bench NAME --help` for each figure that runs on its own (wire, record_memory, ...)."""
    from fiswatch.bench.__main__ import STANDALONE

    assert {"wire", "record_memory", "tls", "maz_figure"} <= set(STANDALONE)
    for name in STANDALONE:
        out = subprocess.run([sys.executable, "-m", "fiswatch.bench", name, "--help"], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0 and "usage: python -m fiswatch.bench.%s" % name in out.stdout, (name, out.stderr)
    listed = subprocess.run([sys.executable, "-m", "fiswatch.bench", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert all("  %s " % name in listed.stdout for name in STANDALONE), listed.stdout
