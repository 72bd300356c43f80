"""The benchmark harness in its quick mode, some figures per test module: `python -m fiswatch.bench --quick
--only ...` in a child, its JSON and table checked. The figures are split over three modules
(test_bench_quick*.py) so that xdist (--dist loadfile) runs them on different workers at once; together they
cover every figure, 1 to 7.

No timing is asserted (machines are shared and noisy): only that each figure asked for is present, ran
without error and produced a numeric value for every metric, and that the metrics named are there."""
import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_quick_bench(tmp_path, figures, wanted_metrics):
    """Run `--quick --only FIGURES`; check the figures and metrics; return the printed table."""
    out = tmp_path / "results.json"
    env = dict(os.environ, PYTHONPATH=ROOT)
    only = ",".join(str(f) for f in figures)
    proc = subprocess.run([sys.executable, "-m", "fiswatch.bench", "--quick", "--only", only, "--out", str(out)],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    results = json.loads(out.read_text())
    assert results["quick"] is True
    assert results["machine"]["nproc"] >= 1
    found = results["figures"]
    assert sorted({f["figure"] for f in found}) == sorted(figures)
    for fig in found:
        assert fig["error"] is None, fig
        assert fig["metrics"], fig["title"]
        for metric in fig["metrics"]:
            value = metric["value"]
            assert isinstance(value, (int, float)) and math.isfinite(value), (fig["title"], metric)
    names = {m["name"] for f in found for m in f["metrics"]}
    for wanted in wanted_metrics:
        assert wanted in names, (wanted, sorted(names))
    table = proc.stdout.decode()
    assert "written:" in table
    return table
