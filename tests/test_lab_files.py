"""Every file the lab reads, fed hostile shapes: one line per problem, never a traceback (lab/files.py)."""
import json
import os

import pytest

from fiswatch.lab.files import LabFileError, check_state, read_credentials, read_pid, read_state_file

GOOD_CREDENTIALS = {
    "aurora": {"username": "fiswatch", "password": "pw", "engine": "mysql", "host": "a.lab.rds.local",
               "port": 3306, "dbname": "testdb", "dbClusterIdentifier": "fiswatch-lab"},
    "rds": {"username": "fiswatch", "password": "pw", "engine": "mysql", "host": "r.lab.rds.local",
            "port": 3306, "dbname": "testdb", "dbInstanceIdentifier": "fiswatch-lab-mysql"},
    "replication": {"username": "repl", "password": "pw"},
}

HOSTILE = {
    "empty": b"",
    "blank": b"  \n",
    "binary": bytes(range(256)) * 4,
    "huge": b"[" + b"1," * 600000 + b"1]",
    "deep": b"[" * 100000 + b"]" * 100000,
    "not json": b"{aurora: 5",
    "a list": b"[1, 2]",
    "a number": b"5",
    "an empty object": b"{}",
    "aurora a number": b'{"aurora": 5}',
    "nul in a name": json.dumps(dict(GOOD_CREDENTIALS, aurora=dict(GOOD_CREDENTIALS["aurora"],
                                                                    host="a\u0000b"))).encode(),
    "port a word": json.dumps(dict(GOOD_CREDENTIALS, rds=dict(GOOD_CREDENTIALS["rds"], port="http"))).encode(),
    "port out of range": json.dumps(dict(GOOD_CREDENTIALS, rds=dict(GOOD_CREDENTIALS["rds"], port=70000))).encode(),
    "port a boolean": json.dumps(dict(GOOD_CREDENTIALS, rds=dict(GOOD_CREDENTIALS["rds"], port=True))).encode(),
    "no replication": json.dumps({k: v for k, v in GOOD_CREDENTIALS.items() if k != "replication"}).encode(),
    "username null": json.dumps(dict(GOOD_CREDENTIALS, aurora=dict(GOOD_CREDENTIALS["aurora"],
                                                                    username=None))).encode(),
    "big integer": b'{"aurora": {"port": 1' + b"0" * 5000 + b"}}",
}


def _lines_ok(message, path):
    lines = str(message).splitlines()
    assert lines and len(lines) <= 6
    # the line names the file and its directory; their length is the machine's (pytest-xdist's
    # temp dirs are longer), not the message's: measure it with a fixed 64-character directory
    lab_dir = os.path.dirname(path)
    for line in lines:
        assert line.startswith("lab file %s: " % path) and "restart the lab" in line
        assert "Traceback" not in line and len(line.replace(lab_dir, "/" + "d" * 63)) < 400


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_credentials_of_every_hostile_shape_are_one_line_per_problem(tmp_path, name):
    path = str(tmp_path / "credentials.json")
    with open(path, "wb") as fh:
        fh.write(HOSTILE[name])
    with pytest.raises(LabFileError) as caught:
        read_credentials(path, str(tmp_path))
    _lines_ok(caught.value, path)


def test_each_wrong_field_is_its_own_line(tmp_path):
    path = str(tmp_path / "credentials.json")
    bad = dict(GOOD_CREDENTIALS, aurora={"username": 5, "host": "", "port": "x"}, rds=[])
    with open(path, "w") as fh:
        json.dump(bad, fh)
    with pytest.raises(LabFileError) as caught:
        read_credentials(path, str(tmp_path))
    problems = caught.value.problems
    assert "aurora.username is a number (5), not a non-empty string" in problems
    assert "aurora.host is an empty string, not a non-empty string" in problems
    assert "aurora.password is missing" in problems and "aurora.dbname is missing" in problems
    assert any(p.startswith("aurora.port is a string ('x')") for p in problems)
    assert "rds is a list, not an object" in problems
    assert len(str(caught.value).splitlines()) == 6  # five problems and "... and N more"


def test_good_credentials_and_a_missing_file(tmp_path):
    path = str(tmp_path / "credentials.json")
    with open(path, "w") as fh:
        json.dump(dict(GOOD_CREDENTIALS, rds=dict(GOOD_CREDENTIALS["rds"], port="3307")), fh)
    creds = read_credentials(path, str(tmp_path))
    assert creds.aurora.port == 3306 and creds.rds.port == 3307 and creds.replication_password == "pw"
    assert creds.aurora.cluster_id == "fiswatch-lab" and creds.rds.instance_id == "fiswatch-lab-mysql"
    os.unlink(path)
    with pytest.raises(LabFileError) as caught:
        read_credentials(path, str(tmp_path))
    assert "cannot be read (No such file or directory)" in str(caught.value)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_state_file_of_every_hostile_shape(tmp_path, name):
    path = str(tmp_path / "lab.json")
    with open(path, "wb") as fh:
        fh.write(HOSTILE[name])
    with pytest.raises(LabFileError) as caught:
        read_state_file(path, str(tmp_path))
    _lines_ok(caught.value, path)


def test_state_with_wrong_instances_names_them():
    state = {"dir": "/d", "pid": 5, "nameserver": ["127.0.0.1", 53], "endpoints": {"aurora-ro": "x"},
             "credentials_file": "/d/c", "log_file": "", "layout": {},
             "instances": [{"name": "i1", "cluster": "aurora", "role": "writer", "address": "127.0.0.1",
                            "port": 3306, "running": "yes"}, 7]}
    with pytest.raises(LabFileError) as caught:
        check_state(state, "reply", "/d")
    assert caught.value.problems == ["state.instances[0].running is a string ('yes'), not true/false",
                                     "state.instances[1] is a number (7), not an object"]
    state["instances"] = state["instances"][:1]
    state["instances"][0]["running"] = True
    checked = check_state(state, "reply", "/d")["checked_instances"]
    assert checked[0].name == "i1" and checked[0].proxy_mode == "pass" and checked[0].running is True


def test_pid_files(tmp_path):
    path = str(tmp_path / "mysqld.pid")
    for text, want in ((b"1234\n", 1234), (b"", None), (b"abc", None), (b"\xff\xfe", None), (b"99999999999", None)):
        with open(path, "wb") as fh:
            fh.write(text)
        assert read_pid(path) == want
    assert read_pid(str(tmp_path / "none")) is None
