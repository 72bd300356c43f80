"""`fiswatch report --plot OUT.png`: the run as a timeline picture.

One row per probe: ops/s from the `tick` events, write gaps shaded red (hatched when the
probe never recovered), stall windows shaded orange, the lab's injected outage shaded
grey, pauses (key p) shaded light blue, and the failover steps / FIS states / DNS flips as
vertical lines on every row.
matplotlib is an optional extra, imported only here and only when a plot is asked for.
"""
from typing import Any, Dict, Iterable, List, Optional, Tuple

from fiswatch.report.build import build_report
from fiswatch.report.model import Report, failover_target
from fiswatch.report.timeline import ops_series

INSTALL_HINT = "install the plot extra for --plot: pip install 'fiswatch[plot]'"


class PlotUnavailable(Exception):
    """matplotlib is missing (or cannot draw); str() is one line for the user."""


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed, never a window
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable(INSTALL_HINT)
    return plt


def plot_report(events: Iterable[Dict[str, Any]], out_path: str, report: Optional[Report] = None,
                title: str = "fiswatch", series: Optional[Dict[str, List[Tuple[float, int]]]] = None) -> str:
    """Draw the timeline of a run into `out_path` (PNG); returns the path.

    Raises PlotUnavailable when matplotlib is not installed, OSError when the file
    cannot be written.
    """
    evs = list(events) if report is None or series is None else []
    plt = _pyplot()
    report = report if report is not None else build_report(evs)
    series = series if series is not None else ops_series(evs)  # ops/s per probe: (ts, ops) per tick
    probes = report.probes or ()
    rows = max(1, len(probes))
    fig, axes = plt.subplots(rows, 1, figsize=(10, 1.0 + 1.8 * rows), sharex=True, squeeze=False)
    t0 = report.start
    legend = {}  # type: Dict[str, Any]
    try:
        for ax, probe in zip(axes[:, 0], probes):
            points = series.get(probe.probe, [])
            if points:
                # each tick counts the second that just ended: draw it as a step over it
                xs = [ts - t0 for ts, _ in points]
                ys = [ops for _, ops in points]
                ax.step(xs, ys, where="pre", color="#1f77b4", linewidth=1.2, label="ops/s")
                ax.set_ylim(bottom=0, top=max(ys + [1]) * 1.25)
            for fo in report.failovers:
                if fo.outage_start is not None and (fo.target == failover_target(probe.endpoint) or len(report.failovers) == 1):
                    end = fo.outage_end if fo.outage_end is not None else report.end
                    ax.axvspan(fo.outage_start - t0, end - t0, color="#999999", alpha=0.25, lw=0,
                               label="injected outage")
            for win in report.pauses:
                ax.axvspan(win.start - t0, win.end - t0, color="#aec7e8", alpha=0.35, lw=0, label="paused (p)")
            for gap in probe.write_gaps:
                ax.axvspan(gap.start - t0, gap.end - t0, color="#d62728", alpha=0.22, lw=0,
                           hatch="//" if gap.open else None,
                           label="write gap (never recovered)" if gap.open else "write gap")
            for win in probe.stalls:
                ax.axvspan(win.start - t0, win.end - t0, ymin=0.0, ymax=0.18, color="#ff7f0e", alpha=0.7, lw=0,
                           label="stall")
            for marker in report.markers:
                if marker.endpoint and marker.endpoint != probe.endpoint and len(report.failovers) != 1:
                    continue  # another endpoint's step: not on this row
                x = marker.ts - t0
                ax.axvline(x, color=_MARKER_COLORS.get(marker.kind, "#555555"), linestyle="--", linewidth=0.8)
                ax.annotate(marker.label or marker.text, xy=(x, 0.98), xycoords=("data", "axes fraction"),
                            rotation=90, fontsize=6, va="top", ha="right", color="#333333")
            label = probe.probe + (" (%s %s)" % (probe.library, probe.version) if probe.library else "")
            ax.set_title(label, loc="left", fontsize=9)
            ax.set_ylabel("ops/s", fontsize=8)
            ax.tick_params(labelsize=8)
            for handle, text in zip(*ax.get_legend_handles_labels()):
                legend.setdefault(text, handle)
        if legend:
            fig.legend(list(legend.values()), list(legend.keys()), fontsize=7, loc="lower center",
                       ncol=len(legend), frameon=False)
        axes[-1, 0].set_xlabel("seconds since run start", fontsize=8)
        axes[-1, 0].set_xlim(0, max(report.duration, 1.0))
        fig.suptitle(title, fontsize=10)
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        fig.savefig(out_path, format="png", dpi=100)
    finally:
        plt.close(fig)
    return out_path


_MARKER_COLORS = {"lab": "#2ca02c", "fis": "#9467bd", "dns": "#17becf", "topology": "#8c564b", "pause": "#1f77b4"}
