"""Sessions, one-line explanations of AWS failures, and endpoints from secrets."""
import json
import os
import subprocess
import sys

import pytest

from _aws_fixture import REGION, moto_server, put_secret, session
from conftest import ROOT
from fiswatch.aws.session import AwsError, explain, make_session
from fiswatch.model import Secret


def _client_error(code, message="boom", operation="GetSecretValue"):
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@pytest.mark.parametrize("code, words", [
    ("AccessDeniedException", "IAM permissions"),
    ("AccessDenied", "IAM permissions"),
    ("ThrottlingException", "throttling"),
    ("Throttling", "throttling"),
    ("ResourceNotFoundException", "check the name"),
    ("ExpiredTokenException", "expired"),
])
def test_explain_client_errors_in_one_line(code, words):
    text = explain(_client_error(code, "line one\nline two"))
    assert "\n" not in text
    assert code in text and words in text
    assert "GetSecretValue" in text


def test_explain_sdk_errors():
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError, NoRegionError

    assert "no AWS credentials" in explain(NoCredentialsError())
    assert "--region" in explain(NoRegionError())
    text = explain(EndpointConnectionError(endpoint_url="http://127.0.0.1:9"))
    assert "cannot reach" in text and "127.0.0.1:9" in text
    assert explain(AwsError("already\n one line")) == "already one line"


def test_make_session_without_region_says_so(monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    with pytest.raises(AwsError) as info:
        make_session(None, None)
    assert "no AWS region" in str(info.value) and "--region" in str(info.value)
    assert make_session(None, "eu-west-1").region_name == "eu-west-1"


def test_make_session_unknown_profile(monkeypatch):
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    with pytest.raises(AwsError) as info:
        make_session("nosuchprofile", None)
    assert "nosuchprofile" in str(info.value)


def test_profile_and_region_from_config_file(tmp_path, monkeypatch):
    config = tmp_path / "config"
    config.write_text("[profile work]\nregion = ap-southeast-2\n")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    assert make_session("work", None).region_name == "ap-southeast-2"


def test_endpoint_url_variable_is_honoured():
    with moto_server() as url:
        sess = make_session(None, REGION)
        assert sess.client("secretsmanager").meta.endpoint_url == url
        put_secret(sess, "Probe", username="u", password="p", host="127.0.0.1")
        assert sess.client("secretsmanager").list_secrets()["SecretList"][0]["Name"] == "Probe"


def test_aws_modules_do_not_import_boto3():
    code = ("import sys, fiswatch.aws.cli, fiswatch.aws.session, fiswatch.aws.secrets, fiswatch.aws.topology, "
            "fiswatch.aws.fis, fiswatch.aws.cloudwatch, fiswatch.aws.runtime, fiswatch.cli;"
            "fiswatch.cli.build_parser();"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------ secrets

def test_endpoints_from_rds_shaped_secrets(moto_session):
    from fiswatch.aws.secrets import endpoints_from_secrets

    put_secret(moto_session, "FisAuroraSecret", username="admin", password="s3cr3t-value", host="10.0.0.5",
               port=3306, dbname="testdb", engine="mysql", dbClusterIdentifier="fisworkshop")
    put_secret(moto_session, "FisMysqlSecret", username="admin", password="other-value", host="10.0.0.6",
               port="3307", engine="mysql", dbInstanceIdentifier="fisworkshop-mysql")
    aurora, rds = endpoints_from_secrets([("aurora", "FisAuroraSecret"), ("rds", "FisMysqlSecret")],
                                         moto_session, table="t1")
    assert (aurora.name, aurora.host, aurora.port, aurora.user, aurora.database, aurora.table) == \
        ("aurora", "10.0.0.5", 3306, "admin", "testdb", "t1")
    assert aurora.password == Secret("s3cr3t-value")
    assert aurora.source == "secret:FisAuroraSecret"
    assert aurora.cluster_id == "fisworkshop" and aurora.instance_id is None
    assert rds.port == 3307 and rds.database == "testdb" and rds.instance_id == "fisworkshop-mysql"
    assert "s3cr3t-value" not in repr(aurora) + str(aurora) + aurora.url()


@pytest.mark.parametrize("fields, missing", [
    ({"username": "u", "password": "p"}, "'host'"),
    ({"username": "u", "host": "10.0.0.1"}, "'password'"),
    ({"password": "p", "host": "10.0.0.1"}, "'username'"),
])
def test_secret_missing_key_names_secret_and_key(moto_session, fields, missing):
    from fiswatch.aws.secrets import endpoints_from_secrets

    put_secret(moto_session, "Partial", **fields)
    with pytest.raises(AwsError) as info:
        endpoints_from_secrets([("aurora", "Partial")], moto_session)
    text = str(info.value)
    assert "Partial" in text and missing in text and "aurora" in text
    assert "\n" not in text


def test_secret_values_never_in_errors(moto_session):
    from fiswatch.aws.secrets import endpoints_from_secrets

    moto_session.client("secretsmanager").create_secret(Name="Plain", SecretString="hunter2-not-json")
    put_secret(moto_session, "BadPort", username="u", password="hunter3", host="10.0.0.1", port="x")
    with pytest.raises(AwsError) as info:
        endpoints_from_secrets([("a", "Plain")], moto_session)
    assert "not JSON" in str(info.value) and "hunter2" not in str(info.value)
    with pytest.raises(AwsError) as info:
        endpoints_from_secrets([("a", "BadPort")], moto_session)
    assert "port" in str(info.value) and "hunter3" not in str(info.value)


def test_missing_secret_is_one_line(moto_session):
    from fiswatch.aws.secrets import endpoints_from_secrets

    with pytest.raises(AwsError) as info:
        endpoints_from_secrets([("aurora", "FisAuroraSecret")], moto_session)
    assert str(info.value) == ("secret 'FisAuroraSecret' not found in Secrets Manager (region us-east-1): "
                               "check the name and --region")


def test_access_denied_on_secret_is_explained():
    from _aws_fixture import StubSession
    from fiswatch.aws.secrets import endpoints_from_secrets

    stub = StubSession()
    stub.stub("secretsmanager").add_client_error("get_secret_value", "AccessDeniedException",
                                                 "not authorized to perform secretsmanager:GetSecretValue",
                                                 expected_params={"SecretId": "FisAuroraSecret"})
    with pytest.raises(AwsError) as info:
        endpoints_from_secrets([("aurora", "FisAuroraSecret")], stub)
    assert "FisAuroraSecret" in str(info.value) and "IAM permissions" in str(info.value)
    stub.assert_no_pending()


@pytest.fixture
def moto_session():
    from moto import mock_aws

    with mock_aws():
        yield session()


def test_secret_json_shape_matches_the_workshop():
    from fiswatch.aws.secrets import endpoint_from_secret_string

    text = json.dumps({"username": "admin", "password": "pw", "host": "fisworkshop.cluster-x.us-east-1.rds."
                       "amazonaws.com", "port": 3306, "dbname": "testdb", "engine": "mysql",
                       "dbClusterIdentifier": "fisworkshop"})
    ep = endpoint_from_secret_string("aurora", "FisAuroraSecret", text)
    assert ep.host.startswith("fisworkshop.cluster-") and ep.cluster_id == "fisworkshop"
