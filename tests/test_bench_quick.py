"""The benchmark harness in its quick mode: every figure runs and yields numbers.

No timing is asserted here (machines are shared and noisy): only that each of the seven
figures is present, ran without error and produced a numeric value for every metric.
"""
import json
import math
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # subprocesses and moto servers: minutes, not seconds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quick_bench_produces_every_figure(tmp_path, mariadb):
    out = tmp_path / "results.json"
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "fiswatch.bench", "--quick", "--out", str(out)],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    results = json.loads(out.read_text())
    assert results["quick"] is True
    assert results["machine"]["nproc"] >= 1
    figures = results["figures"]
    assert sorted({f["figure"] for f in figures}) == [1, 2, 3, 4, 5, 6, 7]
    for fig in figures:
        assert fig["error"] is None, fig
        assert fig["metrics"], fig["title"]
        for metric in fig["metrics"]:
            value = metric["value"]
            assert isinstance(value, (int, float)) and math.isfinite(value), (fig["title"], metric)
    names = {m["name"] for f in figures for m in f["metrics"]}
    for wanted in ("mysql-connector probe/bare", "pymysql probe/bare", "p95 latency",
                   "aurora: PyMySQL probe gap - loop gap", "rds: PyMySQL probe gap - loop gap",
                   "rds: PyMySQL probe gap - outage",
                   "frame 16 probes 200x60", "dashboard CPU beyond --plain", "share of target rate",
                   "fiswatch --help", "watch to first frame with rows", "RSS growth after warm-up",
                   "fds growth, 2nd half of failovers"):
        assert wanted in names
    table = proc.stdout.decode()
    assert "share of target rate" in table and "written:" in table


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
