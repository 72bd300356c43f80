"""The run record: 0600 JSON lines, flushed per event, no secrets, tolerant reader."""
import json
import os
import stat
import threading

import pytest

from fiswatch import events as E
from fiswatch.model import Endpoint, Event, Secret, State
from fiswatch.output.record import RecordError, RecordWriter, load_record, read_record, scrub


def test_file_is_private_even_with_a_permissive_umask(tmp_path):
    path = str(tmp_path / "run.jsonl")
    old = os.umask(0)
    try:
        writer = RecordWriter(path)
    finally:
        os.umask(old)
    writer.write(E.info("hello", ts=1.0))
    writer.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_existing_wide_open_file_is_tightened_and_truncated(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_text('{"ts": 1, "event": "old"}\n')
    os.chmod(str(path), 0o644)
    with RecordWriter(str(path), overwrite=True) as writer:
        writer.write(E.info("new", ts=2.0))
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600
    assert [e["event"] for e in read_record(str(path))] == [E.INFO]


def test_each_event_is_on_disk_as_soon_as_write_returns(tmp_path):
    path = str(tmp_path / "run.jsonl")
    writer = RecordWriter(path)
    try:
        writer.write(E.write("aurora/pymysql", "aurora", id=7, value=123, address="127.0.0.1", ts=10.0))
        # read through another handle while the writer is still open: nothing is buffered
        with open(path) as handle:
            lines = handle.read().splitlines()
        assert len(lines) == 1
        assert json.loads(lines[0]) == {"ts": 10.0, "event": E.WRITE, "probe": "aurora/pymysql",
                                        "endpoint": "aurora", "id": 7, "value": 123, "address": "127.0.0.1"}
        writer.write({"ts": 11.0, "event": E.INFO, "message": "a dict works too"})
        with open(path) as handle:
            assert len(handle.read().splitlines()) == 2
    finally:
        writer.close()
    assert writer.lines == 2


def test_no_secret_reaches_the_file(tmp_path):
    path = str(tmp_path / "run.jsonl")
    endpoint = Endpoint(name="aurora", host="127.0.0.1", user="probe", password=Secret("hunter2-very-secret"))
    with RecordWriter(path) as writer:
        writer.write(Event.make(E.RUN_START, ts=1.0, password="hunter2-very-secret",
                                endpoints=[{"name": "aurora", "url": endpoint.url(), "source": "cli",
                                            "db_password": "hunter2-very-secret",
                                            "nested": {"SecretString": "hunter2-very-secret", "ok": 1}}],
                                token=Secret("hunter2-very-secret"), pw=Secret("hunter2-very-secret"),
                                items=[Secret("hunter2-very-secret"), 3]))
        writer.write(Event.make(E.STATE, ts=2.0, state=State.STALLED, endpoint_obj=endpoint))
    text = open(path).read()
    assert "hunter2" not in text
    first, second = [json.loads(line) for line in text.splitlines()]
    assert "password" not in first and "token" not in first and "pw" not in first
    assert first["endpoints"][0] == {"name": "aurora", "url": "mysql://probe@127.0.0.1:3306/testdb",
                                     "source": "cli", "nested": {"ok": 1}}
    assert first["items"] == [3]
    assert second["state"] == "STALLED"


def test_scrub_makes_json_of_odd_values():
    assert scrub({"a": (1, 2), "b": float("nan"), "c": State.OK, "d": {"secret_key": "x"}}) == {
        "a": [1, 2], "b": None, "c": "OK", "d": {}}


def test_refuses_a_symlink(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("precious\n")
    link = tmp_path / "run.jsonl"
    os.symlink(str(target), str(link))
    with pytest.raises(RecordError) as info:
        RecordWriter(str(link))
    assert "symbolic link" in str(info.value)
    assert target.read_text() == "precious\n"


def test_missing_directory_and_unwritable_directory_give_one_line(tmp_path):
    with pytest.raises(RecordError) as info:
        RecordWriter(str(tmp_path / "nope" / "run.jsonl"))
    assert "does not exist" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(RecordError) as info:
        RecordWriter(str(tmp_path))
    assert "directory" in str(info.value)
    if os.geteuid() != 0:  # root writes anywhere; the message path is covered above
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(RecordError) as info:
            RecordWriter(str(locked / "run.jsonl"))
        assert "permission denied" in str(info.value)


def test_writes_from_several_threads_stay_whole_lines(tmp_path):
    path = str(tmp_path / "run.jsonl")
    writer = RecordWriter(path)

    def burst(n):
        for i in range(500):
            writer.write(Event.make(E.WRITE, ts=float(i), probe="p%d" % n, endpoint="e", id=n * 1000 + i,
                                    value=i, address="127.0.0.1", pad="x" * 300))

    threads = [threading.Thread(target=burst, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    reader = read_record(path)
    ids = sorted(e["id"] for e in reader)
    assert reader.skipped == 0
    assert ids == sorted(n * 1000 + i for n in range(4) for i in range(500))


def test_write_after_close_is_dropped_quietly(tmp_path):
    path = str(tmp_path / "run.jsonl")
    writer = RecordWriter(path)
    writer.close()
    writer.write(E.info("late", ts=1.0))
    assert open(path).read() == ""


def test_reader_skips_a_truncated_last_line_and_says_so(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_text('{"ts": 1.0, "event": "run_start"}\n{"ts": 2.0, "event": "write", "id": 1}\n{"ts": 3.0, "ev')
    reader = read_record(str(path))
    events = list(reader)
    assert [e["event"] for e in events] == ["run_start", "write"]
    assert reader.skipped == 1 and reader.skipped_last
    assert "truncated last line" in reader.note()


def test_reader_counts_garbled_lines_in_the_middle(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_bytes(b'{"ts": 1.0, "event": "a"}\n\xff\xfe garbage\n[1, 2]\n\n{"ts": 2.0, "event": "b"}\n')
    reader = read_record(str(path))
    assert [e["event"] for e in reader] == ["a", "b"]
    assert reader.skipped == 2 and not reader.skipped_last
    assert "line 2, 3" in reader.note()


def test_load_record_errors_are_one_line(tmp_path):
    with pytest.raises(RecordError) as info:
        load_record(str(tmp_path / "missing.jsonl"))
    assert "cannot read record" in str(info.value)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(RecordError) as info:
        load_record(str(empty))
    assert "empty" in str(info.value)
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\nworld\n")
    with pytest.raises(RecordError) as info:
        load_record(str(junk))
    assert "not a fiswatch record" in str(info.value)
