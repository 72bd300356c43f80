"""Figure 6: start-up.

a) `fiswatch --help` wall time (median of repeats); baseline, alternately: `python -c pass`.
b) time from starting `fiswatch watch` (dashboard on a 200x60 pty, 2 endpoints x 2
   backends on the local server) to the first frame showing live rows `(id, value)`;
   baseline, alternately: a bare script that imports both drivers, connects and prints
   the 10 newest rows.
"""
import re
import sys
import time

from fiswatch.bench.common import BenchDb, Figure, child_env, fiswatch_argv, known, median, run_quiet
from fiswatch.bench.ptyrun import PtyChild
from fiswatch.config.checks import password_env_name

ROW = re.compile(r"\(\d+, \d+\)")
BARE = """
import os, pymysql, mysql.connector
c = pymysql.connect(host=os.environ['B_HOST'], port=int(os.environ['B_PORT']), user=os.environ['B_USER'],
                    password=os.environ['B_PW'], database=os.environ['B_DB'], connect_timeout=1)
cur = c.cursor(); cur.execute('INSERT INTO test (value) VALUES (1)'); c.commit()
cur.execute('SELECT id, value FROM test ORDER BY id DESC LIMIT 10'); print(cur.fetchall())
"""


def first_frame(db: BenchDb) -> float:
    env = child_env({password_env_name("a"): db.password.reveal(), password_env_name("b"): db.password.reveal()})
    child = PtyChild(fiswatch_argv("watch", "--endpoint", "a=%s" % db.url(), "--endpoint", "b=%s" % db.url(),
                                   "--duration", "30"), env, cols=200, rows=60, screen=True)
    index = child.watch(lambda text: len(ROW.findall(text)) >= 4)
    try:
        deadline = time.monotonic() + 25.0
        while child.seen_at(index) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        seen = child.seen_at(index)
        if seen is None:
            raise RuntimeError("no live rows on the dashboard within 25 s; screen:\n%s" % child.text()[:800])
        return seen - child.started
    finally:
        child.send(b"q")
        try:
            child.wait(15.0)
        except TimeoutError:
            pass


def run(db: BenchDb, quick: bool) -> Figure:
    fig = Figure(6, "Start-up: --help and time to the first frame with live rows")
    repeats = 3 if quick else 9
    env = child_env()
    helps, bares = [], []
    for i in range(repeats):
        pair = [lambda: helps.append(run_quiet(fiswatch_argv("--help"), env)),
                lambda: bares.append(run_quiet([sys.executable, "-c", "pass"], env))]
        for f in (pair if i % 2 == 0 else pair[::-1]):
            f()
    fig.add("fiswatch --help", median(helps), "s", 0.3, "<=",
            "median of %d; bare `python -c pass` %.3f s" % (repeats, known(median(bares))))
    benv = child_env({"B_HOST": db.host, "B_PORT": str(db.port), "B_USER": db.user, "B_PW": db.password.reveal(),
                      "B_DB": db.database})
    frames, scripts = [], []
    for i in range(max(2, repeats // 2)):
        pair = [lambda: frames.append(first_frame(db)),
                lambda: scripts.append(run_quiet([sys.executable, "-c", BARE], benv))]
        for f in (pair if i % 2 == 0 else pair[::-1]):
            f()
    fig.add("watch to first frame with rows", median(frames), "s", 1.5, "<=",
            "median of %d; bare script import+connect+one round %.3f s" % (len(frames), known(median(scripts))))
    fig.details = {"help_s": [round(x, 3) for x in helps], "python_pass_s": [round(x, 3) for x in bares],
                   "first_frame_s": [round(x, 3) for x in frames], "bare_script_s": [round(x, 3) for x in scripts]}
    return fig
