"""A standalone figure's own lab, and its command-line output.

The figures that need a lab shape of their own (`python -m fiswatch.bench.maz_figure`, read_figure,
rdsproxy_figure, patch_gap, crash_gap, tls) each start a lab on a loopback prefix nobody uses,
measure, and take it down again whatever happened; then they print their metrics and may write
the figure as JSON. One piece of code for all of them; the tests pick their labs' addresses with
free_lab_addresses too (tests/_lab_fixture.py).
"""
import argparse
import contextlib
import json
import shutil
import tempfile
from typing import Any, Callable, Iterator, List, Optional, Tuple


def free_lab_addresses(**options: Any) -> Tuple[str, int, int]:
    """(base, port, dns_port) where a lab with these `lab_up` options (multi_az_cluster, rds_proxy,
    readers ...) finds every address it binds free now."""
    import random

    from fiswatch.lab.bindcheck import LabStartError, check_free
    from fiswatch.lab.layout import Layout

    rng = random.Random()
    for _ in range(50):
        base, dns_port = "127.%d.%d" % (rng.randint(20, 250), rng.randint(1, 250)), rng.randint(20000, 30000)
        try:
            check_free(Layout(dir="/nonexistent", base=base, dns_port=dns_port, **options))
        except LabStartError:
            continue
        return base, 3306, dns_port
    raise RuntimeError("no free loopback prefix for a lab")


@contextlib.contextmanager
def own_lab(name: str, **options: Any) -> Iterator[Tuple[str, Any]]:
    """(lab_dir, LabInfo) of a lab started here with `lab_up` options; down and removed at the end."""
    from fiswatch.lab.api import LabNotRunning, lab_down, lab_up

    lab_dir = tempfile.mkdtemp(prefix="fiswatch-bench-%s-" % name)
    base, port, dns_port = free_lab_addresses(**options)
    try:
        yield lab_dir, lab_up(lab_dir, base=base, port=port, dns_port=dns_port, **options)
    finally:
        try:
            lab_down(lab_dir)
        except LabNotRunning:
            pass
        shutil.rmtree(lab_dir, ignore_errors=True)


def print_metrics(fig: Any, out: Optional[str] = None, width: int = 48) -> None:
    """One line per metric (name, value, unit, note); the figure as JSON in `out` when given."""
    for m in fig.metrics:
        print("%-*s %10s %-2s %s" % (width, m.name, "-" if m.value is None else "%.3f" % m.value, m.unit, m.note))
    if out:
        with open(out, "w") as fh:
            json.dump(fig.as_dict(), fh, indent=2)


def figure_main(module: str, doc: str, run: Callable[[bool, Optional[int]], Any], argv: Optional[List[str]],
                quick_help: str, repeats_help: str) -> int:
    """The command line of a figure run as run(quick, repeats): --quick, --repeats, --out; its metrics printed."""
    p = argparse.ArgumentParser(prog="python -m " + module, description=doc.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--repeats", type=int, default=None, help=repeats_help)
    p.add_argument("--out", help="write the figure as JSON here")
    args = p.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        p.error("--repeats must be at least 1")
    print_metrics(run(args.quick, args.repeats), args.out)
    return 0


__all__ = ["figure_main", "free_lab_addresses", "own_lab", "print_metrics"]
