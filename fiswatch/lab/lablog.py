"""One timestamped line into the lab's lab.log (the daemon, its failovers and its watchers write there)."""
import time

from fiswatch.lab import layout as L


def log_line(layout: L.Layout, message: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime()) + ".%03d" % (int(time.time() * 1000) % 1000)
    with open(layout.log_file, "a") as fh:
        fh.write("%s %s\n" % (stamp, message))
