"""The benchmark harness in its quick mode (tests/_bench_quick.py), figure 7: memory of a full-rate run (7a)
and threads/fds through lab failovers (7b, on a lab of the harness's own)."""
import pytest

from _bench_quick import run_quick_bench

pytestmark = [pytest.mark.slow, pytest.mark.lab]  # a 20 s run, a lab and its failovers


def test_quick_bench_produces_figure_7(tmp_path, mariadb):
    run_quick_bench(tmp_path, [7], ("RSS growth after warm-up", "fds growth, 2nd half of failovers"))
