"""AWS and bad input: AWS_REGION, an endpoint that never answers, stopping the AWS sources,
and `experiment start` refusing bad options before it starts anything."""
import argparse
import contextlib
import os
import socket
import time

import pytest

from _aws_fixture import endpoint_url, fis_moto_server, make_world, moto_server, put_secret
from fiswatch.aws.session import make_session
from fiswatch.cli import run


@pytest.fixture
def region_env(monkeypatch):
    """No region from anywhere but what the test sets."""
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    return monkeypatch


def test_aws_region_alone_is_enough(region_env):
    region_env.setenv("AWS_REGION", "eu-west-1")
    assert make_session().region_name == "eu-west-1"
    region_env.setenv("AWS_DEFAULT_REGION", "us-east-1")  # AWS_REGION wins, as in the AWS CLI
    assert make_session().region_name == "eu-west-1"
    assert make_session(region="ap-south-1").region_name == "ap-south-1"  # --region wins over both


@pytest.mark.slow
def test_create_db_with_a_secret_in_the_aws_region_region(region_env, mariadb, capsys):
    """CloudShell sets only AWS_REGION: a secret in eu-west-1 is found there (moto server)."""
    import boto3

    region_env.setenv("AWS_REGION", "eu-west-1")
    with moto_server():
        put_secret(boto3.session.Session(region_name="eu-west-1"), "DbSecret", username=mariadb.user,
                   password=mariadb.password, host="127.0.0.1", port=mariadb.port, dbname=mariadb.database)
        code = run(["create-db", "--secret", "db=DbSecret", "--no-topology"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.split() == ["DB", "127.0.0.1"]


@contextlib.contextmanager
def silent_endpoint():
    """A loopback port that accepts TCP connections (the kernel does) and never answers a byte."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        with endpoint_url("http://127.0.0.1:%d" % sock.getsockname()[1]) as url:
            yield url
    finally:
        sock.close()


@pytest.mark.slow
def test_an_unanswering_aws_endpoint_says_so_in_seconds(capsys):
    with silent_endpoint():
        started = time.monotonic()
        code = run(["experiment", "status", "EXP1"])
        took = time.monotonic() - started
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert code == 1 and len(lines) == 1, err
    assert "AWS did not answer in time" in lines[0]
    # the old settings (10 s read timeout, 3 attempts) took 30-40 s; now at most 2 x 3 s + one backoff
    assert took < 20, took


def test_stopping_the_aws_sources_is_bounded_while_aws_hangs():
    """CloudWatch's last flush and the FIS poller stuck in a call never stretch the end of a run."""
    from dashboard_app import probe
    from fiswatch.aws.cli import AwsOptions, add_aws_options
    from fiswatch.aws.runtime import STOP_BUDGET, AwsExtras
    from fiswatch.model import View

    parser = argparse.ArgumentParser()
    add_aws_options(parser)
    args = parser.parse_args(["--cloudwatch", "--experiment", "aurora"])
    with silent_endpoint():
        extras = AwsExtras.from_options(AwsOptions.from_args(args), [], lambda event: None)
        extras.start()
        extras.sink(View(ts=time.time(), probes=(probe("aurora", "pymysql"),)), [])
        time.sleep(0.5)  # both threads are now inside an HTTP call that gets no answer
        started = time.monotonic()
        extras.stop()
        took = time.monotonic() - started
    # the old stop joined each source in turn: 2 s (FIS) + 3 s (CloudWatch)
    assert took < STOP_BUDGET + 1.5, took


def _experiments(sess):
    return sess.client("fis").list_experiments()["experiments"]


@pytest.mark.parametrize("argv, fragment", [
    (["--wait", "--timeout=-5"], "argument --timeout: -5 is too small"),
    (["--wait", "--timeout", "nan"], "argument --timeout: 'nan' is not a number of seconds"),
    (["--timeout", "30"], "--timeout only applies with --wait"),
])
@pytest.mark.slow
def test_experiment_start_checks_everything_before_starting(argv, fragment, capsys):
    from fiswatch.aws import fis

    with fis_moto_server():
        from _aws_fixture import session

        sess = make_world(session())
        fis.ensure_template(sess, "aurora")
        try:
            code = run(["experiment", "start", "aurora"] + argv)
        except SystemExit as exc:
            code = exc.code
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and fragment in err[0], err
        assert _experiments(sess) == []  # nothing started
        assert run(["experiment", "start", "aurora"]) == 0  # the same world does start a run
        assert len(_experiments(sess)) == 1
