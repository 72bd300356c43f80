"""AWS command-line options, AwsExtras wiring, and the workshop drop-in scripts."""
import argparse
import io
import os
import shutil
import subprocess
import sys

import pytest

from _aws_fixture import CLUSTER_ID, StubSession, make_cluster, put_secret, session
from conftest import ROOT, wait_for
from fiswatch.aws.cli import (AwsOptions, add_aws_options, add_experiment_parser, endpoints_from_args,
                              run_experiment, secret_pairs)
from fiswatch.aws.runtime import AwsExtras
from fiswatch.engine.runner import Output
from fiswatch.aws.session import AwsError


def _parse(argv):
    """The AWS flags as the code gets them: one frozen AwsOptions."""
    parser = argparse.ArgumentParser(prog="fiswatch watch")
    add_aws_options(parser)
    return AwsOptions.from_args(parser.parse_args(argv))


def test_options_parse_and_workshop_expands():
    args = _parse(["--workshop", "--secret", "extra=MySecret", "--cluster-id", "fisworkshop", "--cloudwatch",
                   "--experiment", "aurora", "--region", "eu-west-1", "--profile", "p"])
    assert secret_pairs(args) == [("extra", "MySecret"), ("aurora", "FisAuroraSecret"), ("rds", "FisMysqlSecret")]
    assert args.cloudwatch and args.experiment == "aurora" and args.region == "eu-west-1" and args.profile == "p"
    assert secret_pairs(_parse(["--workshop", "--secret", "aurora=Other"]))[0] == ("aurora", "Other")
    assert secret_pairs(_parse([])) == []


def test_bad_secret_option_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        _parse(["--secret", "FisAuroraSecret"])
    assert info.value.code == 2
    assert "expected NAME=SECRET_ID" in capsys.readouterr().err


def test_every_option_has_help():
    parser = argparse.ArgumentParser()
    add_aws_options(parser)
    sub = argparse.ArgumentParser().add_subparsers()
    exp = add_experiment_parser(sub)
    actions = list(parser._actions)
    for choice in exp._subparsers._group_actions[0].choices.values():
        actions += choice._actions
    assert all(a.help for a in actions if a.option_strings or a.dest in ("target", "experiment_id"))


def test_endpoints_from_args_with_ids():
    from moto import mock_aws

    with mock_aws():
        sess = session()
        put_secret(sess, "FisAuroraSecret", username="u", password="p", host="10.0.0.1")
        put_secret(sess, "FisMysqlSecret", username="u", password="p", host="10.0.0.2",
                   dbInstanceIdentifier="from-secret")
        args = _parse(["--workshop", "--cluster-id", CLUSTER_ID, "--instance-id", "rds=mine"])
        aurora, rds = endpoints_from_args(args, sess)
        assert aurora.cluster_id == CLUSTER_ID and rds.instance_id == "mine"
        with pytest.raises(AwsError) as info:
            endpoints_from_args(_parse(["--workshop", "--cluster-id", "nope=x"]), sess)
        assert "no endpoint named nope" in str(info.value)
    assert endpoints_from_args(_parse([])) == []


def _exp_args(argv):
    parser = argparse.ArgumentParser(prog="fiswatch")
    add_experiment_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["experiment"] + argv)


def test_run_experiment_status_and_failure_lines(monkeypatch):
    stub = StubSession()
    f = stub.stub("fis")
    f.add_response("get_experiment", {"experiment": {"id": "EXP1", "state": {"status": "running",
                                                                             "reason": "Experiment is running"}}},
                   {"id": "EXP1"})
    f.add_client_error("get_experiment", "ResourceNotFoundException", "Experiment EXP2 not found", 404,
                       expected_params={"id": "EXP2"})
    monkeypatch.setattr("fiswatch.aws.cli.session_from_args", lambda args: stub)
    out, err = io.StringIO(), io.StringIO()
    assert run_experiment(_exp_args(["status", "EXP1"]), out, err) == 0
    assert out.getvalue() == "EXP1 running - Experiment is running\n"
    assert run_experiment(_exp_args(["status", "EXP2"]), out, err) == 1
    assert err.getvalue().count("\n") == 1 and "EXP2" in err.getvalue()
    assert run_experiment(argparse.Namespace(experiment_action=None), out, err) == 2


def test_run_experiment_without_region(monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    err = io.StringIO()
    assert run_experiment(_exp_args(["start", "aurora"]), io.StringIO(), err) == 1
    assert err.getvalue().startswith("fiswatch: no AWS region configured")


def test_aws_extras_wiring_with_moto():
    from moto import mock_aws

    with mock_aws():
        sess = session()
        cluster = make_cluster(sess)
        put_secret(sess, "FisAuroraSecret", username="u", password="p", host=cluster["Endpoint"])
        args = _parse(["--secret", "aurora=FisAuroraSecret", "--cloudwatch", "--experiment", "rds"])
        endpoints = endpoints_from_args(args, sess)
        events = []  # the run's inbox
        extras = AwsExtras.from_options(args, endpoints, events.append, session=sess)
        assert extras.keys == (("x", "start FIS rds experiment"),) and extras.confirm_keys == ("x",)
        assert extras.outputs == (Output(extras.sink, "cloudwatch"),)
        extras.start()
        try:
            wait_for(lambda: extras.topology("aurora"), timeout=30, message="topology lines")
            assert extras.topology("aurora")[0] == "cluster %s available" % CLUSTER_ID
            wait_for(lambda: any(e.event == "topology" for e in list(events)), timeout=30,
                     message="the topology event in the run's inbox")
            status = extras.status_lines()
            assert len(status) == 1 and status[0].startswith("FIS rds")
        finally:
            extras.stop()
    none = AwsExtras.from_options(_parse(["--no-topology"]), [], events.append)
    assert none.topology is None and none.status_lines is None and none.keys == () and none.outputs == ()


SCRIPTS = {"create_db.py": ["create-db", "--workshop"],
           "test_mysql_connector_curses.py": ["watch", "--workshop", "--backend", "mysql-connector"],
           "test_pymysql_curses.py": ["watch", "--workshop", "--backend", "pymysql"]}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_dropin_script_alone_without_fiswatch(tmp_path, name):
    copy = tmp_path / name
    shutil.copy(os.path.join(ROOT, "scripts", name), str(copy))
    assert os.access(os.path.join(ROOT, "scripts", name), os.X_OK)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"  # belt and braces: never a real AWS host
    # -S: no site-packages, i.e. a Python where fiswatch is not installed
    result = subprocess.run([sys.executable, "-S", str(copy)], cwd=str(tmp_path), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "fiswatch is not installed" in result.stderr


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_dropin_script_calls_fiswatch_with_workshop_args(tmp_path, name):
    copy = tmp_path / name
    shutil.copy(os.path.join(ROOT, "scripts", name), str(copy))
    # a stand-in "installed fiswatch" that records what main() was given
    pkg = tmp_path / "site" / "fiswatch"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "cli.py").write_text("import sys\ndef main(argv):\n    print(repr(argv))\n    return 0\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"), AWS_ENDPOINT_URL="http://127.0.0.1:9")
    result = subprocess.run([sys.executable, str(copy), "--region", "eu-west-1"], cwd=str(tmp_path), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr(SCRIPTS[name] + ["--region", "eu-west-1"])
