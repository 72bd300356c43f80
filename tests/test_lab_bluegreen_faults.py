"""Blue/Green fault switches (`lab switchover --fault NAME`, docs/lab.md "Blue/Green faults") and bad input.

One blue/green lab for the module; each test starts from a fresh green (lab/bg_recreate.py), so a
switchover that used green up costs ~2 s, not a new lab. What the lab serves is read as the wrapper's
`bg` plugin reads it (mysql.rds_topology on each side's writer, the lab's DNS); a client's view is
PyMySQL as the lab's non-admin user through the instances' proxies. Checks that must see a state
between two steps run inside the step's callback: the switchover waits for them, so nothing flickers.
"""
import os
import signal
import subprocess
import sys

import pymysql
import pytest

from _lab_fixture import answer_of, lab, private_lab  # noqa: F401 - lab: the shared lab (no green)
from conftest import ROOT, wait_for

from fiswatch.lab import bg_answers as A
from fiswatch.lab import layout as L

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def bgf(tmp_path_factory):
    with private_lab(tmp_path_factory, "bgfaults", blue_green=True) as info:
        yield info


@pytest.fixture
def bg(bgf):
    """The module's lab with green as `lab up --blue-green` left it."""
    from fiswatch.lab.bg_recreate import recreate_green

    recreate_green(bgf.dir)
    return bgf


def _layout(info):
    from fiswatch.lab.control import request

    return L.Layout.from_dict(request(os.path.join(info.dir, L.CONTROL_SOCKET), "state")["layout"])


def _client(info, host):
    from fiswatch.lab.files import password_of

    password = password_of(os.path.join(info.dir, L.CREDENTIALS_FILE), info.dir)
    return pymysql.connect(host=host, port=3306, user=L.CLIENT_USER, password=password, database=L.DATABASE,
                           autocommit=True, connect_timeout=3, read_timeout=5)


def _query(info, host, statement):
    """(rows, None) or (None, MySQL error code), as the lab's user sees it."""
    try:
        conn = _client(info, host)
    except pymysql.err.MySQLError as exc:
        return None, exc.args[0]
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchall(), None
    except pymysql.err.MySQLError as exc:
        return None, exc.args[0]
    finally:
        conn.close()


def _statuses(layout, spec):
    """What a side's writer holds in mysql.rds_topology (as root, over its socket): [(role, status)] or None."""
    from fiswatch.lab.mariadb import sql

    try:
        return [tuple(r) for r in sql(layout.server_socket(spec), ["SELECT role, status FROM %s ORDER BY role"
                                                                   % A.RDS_TOPOLOGY])]
    except pymysql.err.ProgrammingError as exc:
        assert exc.args[0] == 1146  # the table is gone
        return None


def _switchover(info, fault, at=None):
    """Run it; `at`: {step: callback()} run when the step is reached (the switchover waits for it)."""
    from fiswatch.lab.switchover import run_switchover

    steps = []

    def emit(step, detail, **extra):
        steps.append(step)
        if at and step in at:
            at[step]()

    run_switchover(info.dir, emit, fault=fault)
    return steps


def _blue_names_renamed(info, layout):
    """Blue's writer names answer green's addresses, -old1 blue's (the switchover's DNS)."""
    from fiswatch.lab.switchover import old1

    green_writer = layout.proxy_address(L.GREEN_INSTANCES[0])[0]
    return (answer_of(info, L.ENDPOINT_NAMES["aurora"])[1] == [green_writer]
            and answer_of(info, old1(L.ENDPOINT_NAMES["aurora"]))[1] == [layout.proxy_address(L.INSTANCES[0])[0]])


def test_frozen_metadata_blue_stays_in_progress_and_greens_rows_are_removed(bg):
    layout = _layout(bg)
    blue, green = L.INSTANCES[0], L.GREEN_INSTANCES[0]
    seen = {}
    in_progress = [(A.SOURCE, "SWITCHOVER_IN_PROGRESS"), (A.TARGET, "SWITCHOVER_IN_PROGRESS")]

    def at_in_progress():  # written on blue, replicated to green (not promoted yet): wait for it there
        wait_for(lambda: _statuses(layout, green) == in_progress, 20, message="IN_PROGRESS replicated to green")
        seen["in_progress"] = (_statuses(layout, blue), _statuses(layout, green))

    steps = _switchover(bg, "frozen-metadata", at={
        "SWITCHOVER_IN_PROGRESS": at_in_progress,
        "SWITCHOVER_IN_POST_PROCESSING": lambda: seen.update(post=(_statuses(layout, blue), _statuses(layout, green))),
    })
    assert seen["in_progress"] == (in_progress, in_progress)
    assert seen["post"] == (in_progress, [])  # frozen on blue, removed on green
    assert steps[-1] == "done" and "fault" in steps
    assert (_statuses(layout, blue), _statuses(layout, green)) == (in_progress, [])  # and so it stays
    assert _blue_names_renamed(bg, layout)  # the switchover itself completed
    green_addr = layout.proxy_address(green)[0]
    assert _query(bg, green_addr, A.STATUS_QUERY) == ((), None)  # the plugin's query on green: no row


def test_monitors_refused_logins_get_3032_while_the_metadata_moves_on(bg):
    layout = _layout(bg)
    blue_addr, green_addr = (layout.proxy_address(s)[0] for s in (L.INSTANCES[0], L.GREEN_INSTANCES[0]))
    seen = {}

    def at_post():  # POST_PROCESSING written, logins still refused on both sides
        seen["post"] = (_statuses(layout, L.GREEN_INSTANCES[0]), _query(bg, green_addr, A.STATUS_QUERY)[1],
                        _query(bg, blue_addr, "SELECT 1")[1])

    def at_allowed():
        seen["allowed"] = _query(bg, green_addr, A.STATUS_QUERY)

    steps = _switchover(bg, "monitors-refused=3", at={"SWITCHOVER_IN_POST_PROCESSING": at_post,
                                                      "logins-allowed": at_allowed})
    assert seen["post"] == ([(A.SOURCE, "SWITCHOVER_IN_POST_PROCESSING"), (A.TARGET, "SWITCHOVER_IN_POST_PROCESSING")],
                            3032, 3032)
    rows, code = seen["allowed"]
    assert code is None and {r[4] for r in rows} <= {"SWITCHOVER_IN_POST_PROCESSING", "SWITCHOVER_COMPLETED"}
    assert steps.index("logins-allowed") > steps.index("SWITCHOVER_IN_POST_PROCESSING") and steps[-1] == "done"


def test_no_metadata_the_plugin_finds_no_table_and_the_switchover_is_dns_only(bg):
    layout = _layout(bg)
    seen = {}

    def at_initiated():
        seen["exists"] = [_query(bg, layout.proxy_address(s)[0], A.EXISTS_QUERY) for s in
                          (L.INSTANCES[0], L.GREEN_INSTANCES[0], L.INSTANCES[2], L.GREEN_INSTANCES[2])]
        seen["select"] = _query(bg, layout.proxy_address(L.GREEN_INSTANCES[0])[0], A.STATUS_QUERY)

    steps = _switchover(bg, "no-metadata", at={"SWITCHOVER_INITIATED": at_initiated})
    assert seen["exists"] == [((), None)] * 4  # NOT_CREATED on every writer
    assert seen["select"] == (None, 1146)
    assert steps[0] == "fault" and steps[-1] == "done"
    wait_for(lambda: _blue_names_renamed(bg, layout), 10, message="blue names renamed")
    assert _statuses(layout, L.INSTANCES[0]) is None and _statuses(layout, L.GREEN_INSTANCES[0]) is None


def test_green_ids_kept_the_blue_name_answers_green_ids_that_no_longer_resolve(bg):
    from fiswatch.lab.aurora import HOST_ID_QUERY, TOPOLOGY_QUERY

    layout = _layout(bg)
    steps = _switchover(bg, "green-ids-kept")
    assert "topology-kept" in steps and "topology-renamed" not in steps
    host = answer_of(bg, L.ENDPOINT_NAMES["aurora"])[1]  # the blue name, as the lab's DNS answers it now
    assert host == [layout.proxy_address(L.GREEN_INSTANCES[0])[0]]
    rows, code = _query(bg, host[0], HOST_ID_QUERY)
    assert code is None and rows[0][0] == L.GREEN_INSTANCES[0].name
    topology, _ = _query(bg, host[0], TOPOLOGY_QUERY)
    ids = sorted(r[0] for r in topology)
    assert ids == sorted(s.name for s in L.GREEN_INSTANCES[:2])
    for spec in L.GREEN_INSTANCES[:2]:  # the instance names a client builds from them: gone
        assert answer_of(bg, str(spec.dns_name))[0] == "nxdomain"


def test_no_grant_on_green_gives_1142_there_and_hides_the_table(bg):
    layout = _layout(bg)
    seen = {}

    def at_initiated():
        for spec in (L.INSTANCES[0], L.GREEN_INSTANCES[0], L.GREEN_INSTANCES[2]):
            addr = layout.proxy_address(spec)[0]
            seen[spec.name] = (_query(bg, addr, A.STATUS_QUERY), _query(bg, addr, A.EXISTS_QUERY))

    steps = _switchover(bg, "no-grant-on-green", at={"SWITCHOVER_INITIATED": at_initiated})
    blue_rows = seen[L.INSTANCES[0].name][0][0]
    assert {r[4] for r in blue_rows} == {"SWITCHOVER_INITIATED"}  # blue answers
    for spec in (L.GREEN_INSTANCES[0], L.GREEN_INSTANCES[2]):
        assert seen[spec.name] == ((None, 1142), ((), None)), spec.name  # denied; the existence query: no table
    assert steps[-1] == "done"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "fiswatch", "lab", "switchover"] + list(args), cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, AWS_EC2_METADATA_DISABLED="true"))


def test_bad_fault_values_are_one_line_exit_2_and_start_nothing(bg, tmp_path):
    no_lab = _cli("--dir", str(tmp_path), "--fault", "bogus")  # said before looking for a lab
    assert no_lab.returncode == 2 and no_lab.stderr.startswith("fiswatch lab switchover: unknown switchover fault")
    for value, expected in (("slow-dns", "unknown switchover fault 'slow-dns': use one of rollback, frozen-metadata, "
                             "monitors-refused[=SECONDS], no-metadata, green-ids-kept, no-grant-on-green"),
                            ("monitors-refused=soon", "seconds must be a number in (0, 600], got 'soon'"),
                            ("rollback=3", "unknown switchover fault 'rollback=3'")):
        done = _cli("--dir", bg.dir, "--fault", value)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and expected in done.stderr and "Traceback" not in done.stderr
    layout = _layout(bg)
    assert [s for _, s in _statuses(layout, L.INSTANCES[0])] == ["AVAILABLE", "AVAILABLE"]
    assert answer_of(bg, L.ENDPOINT_NAMES["aurora"])[1] == [layout.proxy_address(L.INSTANCES[0])[0]]


def _names(info, layout):
    """What every name a switchover renames answers: {name: addresses or 'nxdomain'}."""
    from fiswatch.lab.switchover import old1

    names = [str(s.dns_name) for s in layout.cluster("aurora")] + [L.ENDPOINT_NAMES["aurora"], L.ENDPOINT_NAMES["rds"]]
    names += [old1(n) for n in names] + [str(s.dns_name) for s in L.GREEN_INSTANCES]
    out = {}
    for name in names:
        kind, addresses, _, _ = answer_of(info, name)
        out[name] = addresses if kind == "ok" else kind
    return out


def _killed_at(info, step):
    """`fiswatch lab switchover --json`, SIGKILLed as soon as it prints `step`."""
    import json

    proc = subprocess.Popen([sys.executable, "-m", "fiswatch", "lab", "switchover", "--dir", info.dir, "--json"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, AWS_EC2_METADATA_DISABLED="true"))
    try:
        for line in proc.stdout:
            if json.loads(line).get("step") == step:
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait(30)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("step", ["topology-renamed", "blue-dns"])
def test_a_killed_switchover_leaves_every_name_blue_or_every_name_renamed(bg, step):
    from fiswatch.lab.switchover import old1

    layout = _layout(bg)
    _killed_at(bg, step)
    names = _names(bg, layout)
    # killed after printing blue-dns: renamed; after topology-renamed: the rename is 0.5 s later on the
    # timeline, but a late process may already run it when the kill lands, so either, never half
    renamed = _renamed_or_blue(bg, layout) == "renamed"
    assert renamed or step == "topology-renamed"
    blue_aurora = [layout.proxy_address(s)[0] for s in layout.cluster("aurora")]
    green = [layout.proxy_address(s)[0] for s in L.GREEN_INSTANCES]
    for spec, addr in zip(layout.cluster("aurora"), blue_aurora):
        target = green[0] if spec.name == L.INSTANCES[0].name else green[1]
        assert names[str(spec.dns_name)] == ([target] if renamed else [addr]), names
        assert names[old1(str(spec.dns_name))] == ([addr] if renamed else "nxdomain"), names
    assert names[L.ENDPOINT_NAMES["rds"]] == [green[2] if renamed else layout.proxy_address(L.INSTANCES[2])[0]]
    assert names[old1(L.ENDPOINT_NAMES["rds"])] == ([layout.proxy_address(L.INSTANCES[2])[0]] if renamed
                                                     else "nxdomain")
    # green's names: all still answering (the removal is 1 s later on the timeline) or, from a late process
    # the kill did not stop in time, all removed (one update too); never some of them
    answers = [names[str(spec.dns_name)] for spec in L.GREEN_INSTANCES]
    assert answers in ([[addr] for addr in green], ["nxdomain"] * len(green)), names


def _renamed_or_blue(info, layout):
    """'renamed' when every name a switchover moves is renamed, 'blue' when none is; anything else fails."""
    names = _names(info, layout)
    blue = {str(s.dns_name): [layout.proxy_address(s)[0]] for s in layout.cluster("aurora")}
    green = [layout.proxy_address(s)[0] for s in L.GREEN_INSTANCES]
    renamed = {str(s.dns_name): [green[0] if s.name == L.INSTANCES[0].name else green[1]]
               for s in layout.cluster("aurora")}
    got = {name: names[name] for name in blue}
    assert got in (blue, renamed), names
    return "renamed" if got == renamed else "blue"


def test_the_next_switchover_completes_or_rolls_back_a_killed_one_and_says_which(bg):
    layout = _layout(bg)
    _killed_at(bg, "SWITCHOVER_IN_PROGRESS")  # green promoted or not yet: either is recovered
    done = _cli("--dir", bg.dir)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    # the phase the daemon kept: IN_PROGRESS, or INITIATED when the kill beat the record that follows the print
    assert ("a switchover killed at SWITCHOVER_IN_PROGRESS" in done.stderr
            or "a switchover killed at SWITCHOVER_INITIATED" in done.stderr) and "nothing new started" in done.stderr
    if "rolled back" in done.stderr:
        assert _renamed_or_blue(bg, layout) == "blue"
        assert [s for _, s in _statuses(layout, L.INSTANCES[0])] == ["AVAILABLE", "AVAILABLE"]
        assert _query(bg, layout.proxy_address(L.INSTANCES[0])[0], "INSERT INTO test (value) VALUES (5)")[1] is None
    else:
        assert "completed at once" in done.stderr, done.stderr
        assert _renamed_or_blue(bg, layout) == "renamed"
        assert _statuses(layout, L.GREEN_INSTANCES[0]) == []
    again = _cli("--dir", bg.dir, "--fault", "rollback")  # consistent: a new one runs, or it says green is used up
    if "rolled back" in done.stderr:
        assert again.returncode == 0, again.stderr
    else:
        assert again.returncode == 2 and "switched over already" in again.stderr, again.stderr


def test_no_green_environment_is_one_line_exit_2(lab):  # noqa: F811 - the fixture
    done = _cli("--dir", lab.dir, "--fault", "frozen-metadata")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "no green environment in this lab: start it with `fiswatch lab up --blue-green`" in done.stderr


def test_two_switchovers_at_once_the_second_is_one_line_exit_2_and_the_first_completes(bg):
    import json

    first = subprocess.Popen([sys.executable, "-m", "fiswatch", "lab", "switchover", "--dir", bg.dir, "--json"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             env=dict(os.environ, AWS_EC2_METADATA_DISABLED="true"))
    try:
        assert json.loads(first.stdout.readline())["step"] == "SWITCHOVER_INITIATED"
        first.send_signal(signal.SIGSTOP)  # held midway, its lock taken, however slow the machine
        second = _cli("--dir", bg.dir)
        first.send_signal(signal.SIGCONT)
        assert second.returncode == 2 and second.stderr.count("\n") == 1, second.stderr
        assert "a failover, crash or switchover already runs in" in second.stderr
        steps = [json.loads(line)["step"] for line in first.stdout]
        assert first.wait(60) == 0 and steps[-1] == "done", steps
    finally:
        first.kill()
        first.wait(30)
        first.stdout.close()
    assert _blue_names_renamed(bg, _layout(bg))
