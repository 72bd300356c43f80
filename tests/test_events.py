"""The event vocabulary (fiswatch/events.py): every kind once, the record's bytes unchanged, fields frozen,
docs/events.md and the screen's tables in step with it."""
import inspect
import json
import os
import pickle
import re

import pytest

from fiswatch import events as E
from fiswatch.model import Event, FrozenMap
from fiswatch.output import jsonl, record
from fiswatch.ui import event_text as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TS = 1700000000.12345
PROBES = [{"probe": "aurora/pymysql", "endpoint": "aurora", "backend": "pymysql", "library": "PyMySQL",
           "version": "1.1.1", "notes": "pure Python", "timeouts": {"connect": 1.0, "read": None, "write": 1.0},
           "available": True}]
ENDPOINTS = [{"name": "aurora", "url": "mysql://admin@db.lab:3306/testdb", "host": "db.lab", "port": 3306,
              "database": "testdb", "table": "test", "source": "cli"}]
TICK = {"aurora/pymysql": {"state": "OK", "ops": 18, "errors": 0, "latency_ms": 2.51, "stalled_for": 0.0}}
SUMMARY = {"aurora/pymysql": {"ops": 900, "errors": 2, "reconnects": 1, "failovers": 0, "longest_stall_s": 1.02,
                              "stalled_now": False, "state": "OK", "address": "127.0.10.12", "last_error": "2013 lost"}}
PA = ("aurora/pymysql", "aurora")

# Each constructor call and the line the emitters wrote before the vocabulary existed (generated
# with the previous Event.make and the previous emitters' keyword order): the record format is unchanged.
CASES = [
    (lambda: E.run_start(PROBES, ENDPOINTS, stall_after=2.0, interval=0.05, ts=TS),
     '{"ts":1700000000.123,"event":"run_start","probes":[{"probe":"aurora/pymysql","endpoint":"aurora",'
     '"backend":"pymysql","library":"PyMySQL","version":"1.1.1","notes":"pure Python","timeouts":{"connect":1.0,'
     '"read":null,"write":1.0},"available":true}],"endpoints":[{"name":"aurora","url":"mysql://admin@db.lab:3306/'
     'testdb","host":"db.lab","port":3306,"database":"testdb","table":"test","source":"cli"}],"stall_after":2.0,'
     '"interval":0.05}'),
    (lambda: E.state(*PA, "pymysql", "STALLED", previous="OK", op="INSERT", address="127.0.10.11", ts=TS),
     '{"ts":1700000000.123,"event":"state","probe":"aurora/pymysql","endpoint":"aurora","backend":"pymysql",'
     '"state":"STALLED","previous":"OK","op":"INSERT","error":null,"address":"127.0.10.11"}'),
    (lambda: E.error(*PA, code=2013, kind="read-timeout", message="Lost connection to MySQL server during query",
                     op="INSERT", address="127.0.10.11", took=1.0012, ts=TS),
     '{"ts":1700000000.123,"event":"error","probe":"aurora/pymysql","endpoint":"aurora","code":2013,'
     '"kind":"read-timeout","message":"Lost connection to MySQL server during query","op":"INSERT",'
     '"address":"127.0.10.11","took":1.0012}'),
    (lambda: E.dns("aurora", "db.lab", addresses=["127.0.10.12"], previous=["127.0.10.11"], cname="instance-2.lab",
                   ttl=5, ts=TS),
     '{"ts":1700000000.123,"event":"dns","endpoint":"aurora","name":"db.lab","addresses":["127.0.10.12"],'
     '"previous":["127.0.10.11"],"cname":"instance-2.lab","ttl":5,"error":null,"source":"dns"}'),
    (lambda: E.connect(*PA, address="127.0.10.12", port=3306, took=0.0041, ts=TS),
     '{"ts":1700000000.123,"event":"connect","probe":"aurora/pymysql","endpoint":"aurora","address":"127.0.10.12",'
     '"port":3306,"took":0.0041}'),
    (lambda: E.write(*PA, id=7, value=123, address="127.0.10.12", ts=TS),
     '{"ts":1700000000.123,"event":"write","probe":"aurora/pymysql","endpoint":"aurora","id":7,"value":123,'
     '"address":"127.0.10.12"}'),
    (lambda: E.write_in_doubt(*PA, id=8, value=5, address="127.0.10.11", error="2013 lost", ts=TS),
     '{"ts":1700000000.123,"event":"write_in_doubt","probe":"aurora/pymysql","endpoint":"aurora","id":8,"value":5,'
     '"address":"127.0.10.11","error":"2013 lost"}'),
    (lambda: E.write_in_doubt(*PA, id=9, value=6, address="127.0.10.11",
                              error="COMMIT never returned before the probes stopped", at_stop=True, ts=TS),
     '{"ts":1700000000.123,"event":"write_in_doubt","probe":"aurora/pymysql","endpoint":"aurora","id":9,"value":6,'
     '"address":"127.0.10.11","error":"COMMIT never returned before the probes stopped","at_stop":true}'),
    (lambda: E.read("aurora-ro/pymysql", "aurora-ro", id=12, rows=10, server="5", address="127.0.10.5", ts=TS),
     '{"ts":1700000000.123,"event":"read","probe":"aurora-ro/pymysql","endpoint":"aurora-ro","id":12,"rows":10,'
     '"server":"5","address":"127.0.10.5"}'),
    (lambda: E.failover(*PA, op="COMMIT", seconds=1.234, in_transaction=True, write_in_doubt=True, error="failover",
                        from_="127.0.10.11", to="127.0.10.12", ts=TS),
     '{"ts":1700000000.123,"event":"failover","probe":"aurora/pymysql","endpoint":"aurora","op":"COMMIT",'
     '"seconds":1.234,"in_transaction":true,"write_in_doubt":true,"error":"failover","from":"127.0.10.11",'
     '"to":"127.0.10.12"}'),
    (lambda: E.tick(TICK, ts=TS),
     '{"ts":1700000000.123,"event":"tick","probes":{"aurora/pymysql":{"state":"OK","ops":18,"errors":0,'
     '"latency_ms":2.51,"stalled_for":0.0}}}'),
    (lambda: E.lab("aurora", "start", "aurora failover (fast): a -> b", crash=False, outage_start=1700000001.5, ts=TS),
     '{"ts":1700000000.123,"event":"lab","target":"aurora","step":"start","detail":"aurora failover (fast): a -> b",'
     '"crash":false,"outage_start":1700000001.5}'),
    (lambda: E.lab("rds", "promote", "b promoted", crash=True, ts=TS),
     '{"ts":1700000000.123,"event":"lab","target":"rds","step":"promote","detail":"b promoted","crash":true}'),
    (lambda: E.lab("aurora", "done", "aurora failover finished", crash=False, outage_end=1700000011.25,
                   recovered="finished", ts=TS),
     '{"ts":1700000000.123,"event":"lab","target":"aurora","step":"done","detail":"aurora failover finished",'
     '"crash":false,"outage_end":1700000011.25,"recovered":"finished"}'),
    (lambda: E.lab("aurora", "start", "aurora crash (instance): i-1 restarts in 3s", crash=False,
                   outage_start=1700000001.5, outage="crash", ts=TS),
     '{"ts":1700000000.123,"event":"lab","target":"aurora","step":"start","detail":"aurora crash (instance): i-1 '
     'restarts in 3s","crash":false,"outage_start":1700000001.5,"outage":"crash"}'),
    (lambda: E.lab("bluegreen", "SWITCHOVER_IN_PROGRESS", "blue read-only (1290)", crash=False,
                   outage_start=1700000001.5, outage="switchover", ts=TS),
     '{"ts":1700000000.123,"event":"lab","target":"bluegreen","step":"SWITCHOVER_IN_PROGRESS","detail":"blue '
     'read-only (1290)","crash":false,"outage_start":1700000001.5,"outage":"switchover"}'),
    (lambda: E.topology("aurora", lines=["writer instance-2", "reader instance-1"], previous=[], ts=TS),
     '{"ts":1700000000.123,"event":"topology","endpoint":"aurora","lines":["writer instance-2","reader instance-1"],'
     '"previous":[]}'),
    (lambda: E.experiment("EXP1", "aurora", "running", ts=TS),
     '{"ts":1700000000.123,"event":"experiment","experiment_id":"EXP1","target":"aurora","state":"running",'
     '"reason":null}'),
    (lambda: E.info("exec: hello", ts=TS), '{"ts":1700000000.123,"event":"info","message":"exec: hello"}'),
    (lambda: E.info("paused", pause=True, ts=TS),
     '{"ts":1700000000.123,"event":"info","message":"paused","pause":true}'),
    (lambda: E.warning("output json disabled: EPIPE", ts=TS),
     '{"ts":1700000000.123,"event":"warning","message":"output json disabled: EPIPE"}'),
    (lambda: E.verify("aurora", ok=False, acknowledged=120, lost=2, changed=1, in_doubt_committed=1,
                      in_doubt_not_committed=0, lost_ids=[19, 20], error=None, server="vm:3308 read_only=0",
                      warnings=["the server is read-only"], ts=TS),
     '{"ts":1700000000.123,"event":"verify","endpoint":"aurora","ok":false,"acknowledged":120,"lost":2,"changed":1,'
     '"in_doubt_committed":1,"in_doubt_not_committed":0,"lost_ids":[19,20],"error":null,'
     '"server":"vm:3308 read_only=0","warnings":["the server is read-only"]}'),
    (lambda: E.run_stop(ts=TS), '{"ts":1700000000.123,"event":"run_stop"}'),
    (lambda: E.wire_client("aurora/program", "aurora", backend="app.py", acked=3, segments=[[1.0, 2.5]], gap_min=0.2,
                           errors={"2013": 1}, last_error=[2013, 2.0], refused=0, last_refused=None, dropped=1,
                           last_dropped=2.0, faults=[2.0], unmeasured={}, rolled_back=1, rolled_back_writes=2, ts=TS),
     '{"ts":1700000000.123,"event":"wire_client","probe":"aurora/program","endpoint":"aurora","backend":"app.py",'
     '"acked":3,"segments":[[1.0,2.5]],"gap_min":0.2,"errors":{"2013":1},"last_error":[2013,2.0],"refused":0,'
     '"last_refused":null,"dropped":1,"last_dropped":2.0,"faults":[2.0],"unmeasured":{},"rolled_back":1,'
     '"rolled_back_writes":2}'),
    (lambda: E.lab_daemon("gone", lab_dir="/tmp/lab", message="lab daemon gone: the lab's proxies and DNS stopped",
                          orphans=2, ts=TS),
     '{"ts":1700000000.123,"event":"lab_daemon","state":"gone","lab_dir":"/tmp/lab","message":"lab daemon gone: '
     'the lab\'s proxies and DNS stopped","orphans":2}'),
    (lambda: E.summary(SUMMARY, ts=TS),
     '{"ts":1700000000.123,"event":"summary","probes":{"aurora/pymysql":{"ops":900,"errors":2,"reconnects":1,'
     '"failovers":0,"longest_stall_s":1.02,"stalled_now":false,"state":"OK","address":"127.0.10.12",'
     '"last_error":"2013 lost"}}}'),
]


def test_every_kind_has_a_constructor_and_a_case():
    assert set(E.CONSTRUCTORS) == set(E.KINDS) and len(E.KINDS) == len(set(E.KINDS))
    assert {make().event for make, _ in CASES} == set(E.KINDS)
    for kind, make in E.CONSTRUCTORS.items():
        assert getattr(E, kind.upper()) == kind and make.__name__ == kind
    assert E.FREQUENT <= E.QUIET <= set(E.KINDS) and E.NOT_STREAMED <= E.FREQUENT and E.CLOSING <= set(E.KINDS)


@pytest.mark.parametrize("make, line", CASES, ids=[line.split('"event":"')[1].split('"')[0] for _, line in CASES])
def test_record_and_json_lines_are_byte_for_byte_and_round_trip(tmp_path, make, line):
    ev = make()
    assert record.event_line(ev) == line + "\n"  # --record
    assert jsonl.event_line(ev) == line  # --json
    path = str(tmp_path / "run.jsonl")
    writer = record.RecordWriter(path)
    writer.write(ev)
    writer.close()
    with open(path, "rb") as fh:
        assert fh.read() == (line + "\n").encode("utf-8")
    back = list(record.read_record(path))
    assert back == [json.loads(line)]
    # read back and made an Event again: the same line
    data = dict(back[0])
    again = Event(data.pop("event"), data.pop("ts"), tuple(data.items()))
    assert again == Event(ev.event, round(ev.ts, 3), ev.fields)
    assert record.event_line(again) == line + "\n"


def test_fields_are_immutable_all_the_way_down():
    ev = E.run_start(PROBES, ENDPOINTS, stall_after=2.0, interval=0.05, ts=TS)
    probes = ev.get("probes")
    assert isinstance(probes, tuple) and isinstance(probes[0], FrozenMap)
    with pytest.raises(TypeError):
        probes[0]["probe"] = "x"  # type: ignore[index]
    with pytest.raises(AttributeError):
        probes[0]["timeouts"].update(read=5)  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        probes[0]._items = {}  # type: ignore[misc]
    # the caller's own lists and dicts are copied, not shared: changing them later changes nothing
    mine = [{"probe": "a/b"}]
    ev2 = E.run_start(mine, [], stall_after=1.0, interval=0.1, ts=TS)
    mine[0]["probe"] = "changed"
    mine.append({"probe": "c/d"})
    assert ev2.get("probes") == ({"probe": "a/b"},)
    # as_dict gives plain data the caller may change without touching the event
    out = ev.as_dict()
    out["probes"][0]["timeouts"]["read"] = 9
    assert ev.get("probes")[0]["timeouts"]["read"] is None
    # frozen values are hashable and pickle (events cross threads and, in the benchmark, processes)
    assert hash(ev) == hash(E.run_start(PROBES, ENDPOINTS, stall_after=2.0, interval=0.05, ts=TS))
    assert pickle.loads(pickle.dumps(ev)) == ev


def _doc_rows():
    """{table number: {kind: row text}} of docs/events.md's event tables."""
    tables, current = [], None
    with open(os.path.join(ROOT, "docs", "events.md")) as fh:
        for line in fh:
            if line.startswith("| event |"):
                current = {}
                tables.append(current)
            elif line.startswith("|") and current is not None:
                cells = line.split("|")
                for kind in re.findall(r"`(\w+)`", cells[1]):
                    current[kind] = "|".join(cells[2:])
            elif not line.startswith("|"):
                current = None
    return tables


def test_docs_events_md_lists_exactly_the_vocabulary_and_each_constructors_fields():
    run, fleet = _doc_rows()
    assert sorted(run) == sorted(E.KINDS), "docs/events.md and fiswatch/events.py disagree on the kinds"
    assert sorted(fleet) == sorted(E.FLEET_KINDS)
    for kind, make in E.CONSTRUCTORS.items():
        fields = [name.rstrip("_") for name in inspect.signature(make).parameters if name != "ts"]
        missing = [name for name in fields if "`%s`" % name not in run[kind]]
        assert not missing, "docs/events.md: the %s row does not name %s" % (kind, missing)


def test_screen_tables_name_only_known_kinds_and_every_kind_reads_as_one_line():
    assert set(ET.EVENT_TEXT) <= set(E.KINDS) and set(ET.EVENT_STYLE) <= set(E.KINDS)
    styles = {"ok", "stalled", "error", "warn", "dim", "normal"}
    for make, _ in CASES:
        ev = make()
        text = ET.event_text(ev)
        assert text and "\n" not in text
        assert ET.event_style(ev) in styles
    assert ET.event_text(E.run_stop(ts=TS)) == "run_stop"  # no formatter: the kind and its fields
    assert ET.event_text(E.failover(*PA, op="COMMIT", seconds=1.234, in_transaction=True, write_in_doubt=True,
                                    error="x", from_="10.0.0.1", to="10.0.0.2", ts=TS)) == \
        "aurora/pymysql failed over 10.0.0.1 -> 10.0.0.2 in 1.2s (in COMMIT), its COMMIT in doubt"
    assert [ev.event for ev in ET.loggable([make() for make, _ in CASES])] == [
        k for k in (make().event for make, _ in CASES)
        if k not in (E.WRITE, E.READ, E.TICK, E.CONNECT, E.SUMMARY, E.WIRE_CLIENT)]


KIND = "|".join(sorted(E.KINDS + E.FLEET_KINDS, key=len, reverse=True))
BYPASS = [
    re.compile(r"Event\.make\("),  # a kind built outside the vocabulary
    re.compile(r"(\.event|\[\"event\"\]|\.get\(\"event\"\))\s*(==|!=|in|not in)\s*\(?\"(%s)\"" % KIND),
    re.compile(r"\"event\":\s*\"(%s)\"" % KIND),
]


def test_no_kind_literal_outside_the_vocabulary():
    found = []
    for folder, _, files in os.walk(os.path.join(ROOT, "fiswatch")):
        for name in files:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, ROOT)
            if not name.endswith(".py") or rel in ("fiswatch/events.py", "fiswatch/model.py"):
                continue
            with open(path) as fh:
                for number, line in enumerate(fh, 1):
                    if any(p.search(line) for p in BYPASS):
                        found.append("%s:%d: %s" % (rel, number, line.strip()))
    assert not found, "use fiswatch.events' constants and constructors:\n" + "\n".join(found)
