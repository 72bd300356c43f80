"""The ledger's bounds against real clients: a program that forks children that connect (grouped under
it), 1,000 connections each accounted, and no memory kept per closed connection."""
import json
import os
import subprocess
import sys
import threading

import pymysql
import pytest
from conftest import wait_for

from _wire_fixture import accounted_proxy, snapshot

from fiswatch.lab.wire.verdict import merge, program_clients

WAVE = 50  # connections at once: the machine's MariaDB allows 151 (max_connections), shared with other tests
WAVES = 20  # 1,000 connections in all


@pytest.fixture
def accounted(mariadb):
    with accounted_proxy(mariadb, "bounds",
                         "CREATE TABLE IF NOT EXISTS wire_bounds (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)") as pair:
        yield pair


FORKER = """\
import os, sys, pymysql
host, port, user, db = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
password = sys.stdin.readline().rstrip("\\n")
children = []
for n in range(4):
    pid = os.fork()
    if pid == 0:
        c = pymysql.connect(host=host, port=port, user=user, password=password, database=db, autocommit=True)
        for _ in range(5):
            c.cursor().execute("INSERT INTO wire_bounds (v) VALUES (%d)" % n)
        c.close()
        os._exit(0)
    children.append(pid)
print(" ".join(map(str, children)), flush=True)
for pid in children:
    os.waitpid(pid, 0)
"""


def test_a_program_that_forks_children_that_connect_is_one_program(accounted, mariadb):
    proxy, ledger = accounted
    proc = subprocess.run([sys.executable, "-c", FORKER, proxy.address[0], str(proxy.address[1]), mariadb.user,
                           mariadb.database], input=mariadb.password + "\n", capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    children = [int(p) for p in proc.stdout.split()]
    wait_for(lambda: proxy.connection_count() == 0, message="the children's connections closed")
    # the parent is gone by now; its children are still found under it (their ancestors were read while alive)
    clients = program_clients(snapshot(proxy, ledger), _parent_of(ledger, proxy, children))
    assert sorted(c["pid"] for c in clients) == sorted(children)
    merged = merge(clients)["bounds"]
    assert merged["acked"] == 20 and merged["dropped"] == 0
    assert all(c["connects"] == 1 and c["open"] == 0 for c in clients)


def _parent_of(ledger, proxy, children):
    snap = snapshot(proxy, ledger)
    parents = {c["ancestors"][0] for c in snap["clients"] if c["pid"] in children and c["ancestors"]}
    assert len(parents) == 1, parents  # every child's first ancestor is the one program that forked them
    return parents.pop()


def _wave(proxy, mariadb, errors):
    def one():
        try:
            c = pymysql.connect(host=proxy.address[0], port=proxy.address[1], user=mariadb.user,
                                password=mariadb.password, database=mariadb.database, autocommit=True,
                                connect_timeout=30, read_timeout=30,
                                ssl_disabled=True)  # PyMySQL 1.2: no TLS context (~20 ms of CPU) per connect
            c.cursor().execute("INSERT INTO wire_bounds (v) VALUES (1000)")
            c.close()
        except Exception as exc:  # counted: the test says how many failed and why
            errors.append(repr(exc))
    threads = [threading.Thread(target=one) for _ in range(WAVE)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)


@pytest.mark.slow
def test_a_thousand_connections_are_each_accounted_and_closed_ones_cost_nothing(accounted, mariadb):
    """1,000 connections in waves of 50 (the shared server's max_connections is 151): every one is
    accounted under this process; the ledger's size after the last wave is what it was after the
    first, apart from the counters' digits and the insert ranges the lost-write check keeps."""
    proxy, ledger = accounted
    errors = []
    sizes = []
    for wave in range(WAVES):
        _wave(proxy, mariadb, errors)
        wait_for(lambda: proxy.connection_count() == 0, message="wave %d closed" % wave)
        me = next(c for c in snapshot(proxy, ledger)["clients"] if c["pid"] == os.getpid())
        bare = dict(me, inserts={}, endpoints={e: dict(t, segments=[], faults=[]) for e, t in me["endpoints"].items()})
        sizes.append(len(json.dumps(bare, sort_keys=True)))
    assert errors == []
    me = next(c for c in snapshot(proxy, ledger)["clients"] if c["pid"] == os.getpid())
    assert me["connects"] == WAVE * WAVES and me["open"] == 0
    assert me["endpoints"]["bounds"]["acked"] == WAVE * WAVES
    assert sum(n for _, n in _ranges(me)) == WAVE * WAVES  # each insert's id kept, as ranges
    assert me["unmeasured"] == {}
    assert sizes[-1] - sizes[0] <= 16, sizes  # a few more digits in the counters, nothing per connection
    assert proxy._ploop.call(lambda: len(ledger._clients)) <= 3  # this process, and perhaps a peer not yet named


def _ranges(me):
    return [(first, n) for ranges in me["inserts"].values() for first, n in ranges]
