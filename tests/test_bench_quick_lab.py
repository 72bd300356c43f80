"""The benchmark harness in its quick mode (tests/_bench_quick.py), figure 3: recovery after lab failovers,
on a lab of the harness's own (its own module, so an xdist worker of its own)."""
import pytest

from _bench_quick import run_quick_bench

pytestmark = [pytest.mark.slow, pytest.mark.lab]  # a lab and its failovers: a minute or more


def test_quick_bench_produces_figure_3(tmp_path, mariadb):
    run_quick_bench(tmp_path, [3], ("aurora: PyMySQL probe gap - loop gap", "rds: PyMySQL probe gap - loop gap",
                                    "rds: PyMySQL probe gap - outage"))
