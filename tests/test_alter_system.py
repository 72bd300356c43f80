"""Aurora's ALTER SYSTEM statements as the lab's instance proxies answer them (lab/wire/alter_system.py):
the parser, the answers and the rewriter's fallback, without a lab (the real lab: test_lab_crash.py)."""
import doctest

from fiswatch.lab import aurora, replica_failure
from fiswatch.lab.wire import alter_system as A
from fiswatch.lab.wire import framing as F


def test_doctests():
    result = doctest.testmod(A)
    assert result.attempted >= 6 and result.failed == 0
    result = doctest.testmod(replica_failure)
    assert result.attempted >= 3 and result.failed == 0


def test_read_replica_failure_checks():
    assert replica_failure.check(100, None, 5, ["r1"]) == ""
    assert "above 0" in replica_failure.check(0, None, 5, ["r1"])
    assert "at most 100" in replica_failure.check(150, None, 5, ["r1"])
    assert "10 minutes" in replica_failure.check(50, None, 3600, ["r1"])
    assert "no reader 'r9'" in replica_failure.check(50, "r9", 5, ["r1"])


def _rewrite(rewriter, text):
    packet = F.Packet(0, len(text) + 1, bytes((F.COM_QUERY,)) + text.encode("utf-8"))
    return F.packet_bytes(0, packet.head), rewriter.rewrite(packet)


def test_the_rewriter_asks_alter_system_only_for_texts_it_does_not_know():
    crashes = []

    def crash(instance, kind):
        crashes.append((instance, kind))
        return ""

    make = aurora.rewriter_factory("1", A.AlterSystem("i-1", crash))
    rewriter = make()
    sent, got = _rewrite(rewriter, "SELECT 1")
    assert got == sent and not crashes
    _, got = _rewrite(rewriter, " alter system crash node ; ")
    assert crashes == [("i-1", "node")] and got[5:] == A.HOLD.encode()
    _, got = _rewrite(rewriter, aurora.IS_READER_QUERY)
    assert b"@@read_only" in got and len(crashes) == 1


def test_a_refused_crash_and_simulate_are_mysql_errors():
    answers = A.AlterSystem("i-2", lambda instance, kind: "a failover, crash or reboot already runs in /x")
    assert answers.answer(b"ALTER SYSTEM CRASH") == A.error_statement(1105, "a failover, crash or reboot "
                                                                              "already runs in /x")
    simulate = answers.answer(b"ALTER SYSTEM SIMULATE 20 PERCENT DISK HICCUPS FOR INTERVAL 1 MINUTE")
    assert "MYSQL_ERRNO=1105" in simulate and "not supported" in simulate
    bad = answers.answer(b"ALTER SYSTEM RESTART '; DROP TABLE x")
    assert "MYSQL_ERRNO=1064" in bad and "''; DROP" in bad  # quoted: one statement, never two
    assert answers.answer(b"\xff\xfe garbage") is None and answers.answer(b"ALTERNATIVE") is None


def test_a_disk_failure_fails_its_share_of_statements_for_its_interval_only():
    now, dice = [100.0], [0.0]
    disk = A.DiskFailure(clock=lambda: now[0], dice=lambda: dice[0])
    answers = A.AlterSystem("i-1", lambda instance, kind: "")
    answers.disk = disk
    assert answers.answer(b"SELECT 1") is None  # nothing simulated
    assert answers.answer(b"ALTER SYSTEM SIMULATE 40 PERCENT DISK FAILURE FOR INTERVAL 2 SECOND") == A.STARTED
    dice[0] = 0.39
    assert "MYSQL_ERRNO=1030" in answers.answer(b"SELECT 1")
    dice[0] = 0.41
    assert answers.answer(b"SELECT 1") is None  # the other 60 %
    dice[0], now[0] = 0.0, 102.0
    assert answers.answer(b"SELECT 1") is None and not disk.wants(10)  # the interval is over
    refused = answers.answer(b"ALTER SYSTEM SIMULATE 5 PERCENT DISK FAILURE FOR INTERVAL 11 MINUTE")
    assert "MYSQL_ERRNO=1105" in refused and "10 minutes" in refused


def test_a_disk_congestion_holds_its_share_of_statements_for_its_interval_only():
    now, dice = [100.0], [0.0]
    slow = A.DiskCongestion(clock=lambda: now[0], dice=lambda: dice[0])
    answers = A.AlterSystem("i-1", lambda instance, kind: "")
    answers.congestion = slow
    assert answers.delay() == 0.0 and not answers.busy(10)  # nothing simulated
    assert answers.answer(b"alter system simulate 50 percent disk congestion between 200 and 400 milliseconds "
                          b"in node 1 for interval 2 second;") == A.STARTED
    assert answers.busy(10) and not answers.busy(A.DISK_MAX_TEXT + 1)
    dice[0] = 0.25  # picked (25 < 50), and the delay 200 + 0.25 * 200 ms
    assert abs(answers.delay() - 0.25) < 1e-9 and answers.answer(b"SELECT 1") is None  # held, not failed
    dice[0] = 0.6
    assert answers.delay() == 0.0  # the other 50 %
    dice[0], now[0] = 0.0, 102.0
    assert answers.delay() == 0.0 and not answers.busy(10)  # the interval is over
    for bad, why in ((b"0 PERCENT DISK CONGESTION BETWEEN 1 AND 2 MILLISECONDS FOR INTERVAL 1 SECOND", "PERCENT"),
                     (b"5 PERCENT DISK CONGESTION BETWEEN 1 AND 20000 MILLISECONDS FOR INTERVAL 1 SECOND", "at most"),
                     (b"5 PERCENT DISK CONGESTION BETWEEN 1 AND 2 MILLISECONDS FOR INTERVAL 11 MINUTE", "10 minutes")):
        refused = answers.answer(b"ALTER SYSTEM SIMULATE " + bad)
        assert "MYSQL_ERRNO=1105" in refused and why in refused, refused


def test_the_rewriter_hands_a_congested_statements_delay_to_the_session_once():
    from fiswatch.lab import aurora
    from fiswatch.lab.wire.session import Session

    answers = A.AlterSystem("i-1", lambda instance, kind: "")
    answers.congestion = A.DiskCongestion(dice=lambda: 0.0)
    answers.answer(b"ALTER SYSTEM SIMULATE 100 PERCENT DISK CONGESTION BETWEEN 300 AND 300 MILLISECONDS "
                   b"FOR INTERVAL 1 MINUTE")
    session = Session(rewriter=aurora.rewriter_factory("i-1", answers)())
    assert session.take_delay() == 0.0
    rewriter = session.rewriter
    assert rewriter.wants(len(b"\x03SELECT 1"), 3)
    _rewrite(rewriter, "SELECT 1")
    assert abs(session.take_delay() - 0.3) < 1e-9 and session.take_delay() == 0.0
