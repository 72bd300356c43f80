"""Endpoints from AWS Secrets Manager secrets shaped like the ones RDS generates.

A secret's JSON holds `username`, `password`, `host`, `port`, `dbname` and, for RDS
generated secrets, `engine` and `dbClusterIdentifier` / `dbInstanceIdentifier`.
The password becomes a fiswatch.model.Secret at once; no secret value ever reaches an
error message.
"""
import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

from fiswatch.aws.session import AwsError, client, explain
from fiswatch.model import Endpoint, Secret

# What the workshop's `--workshop` flag means.
WORKSHOP_SECRETS: Tuple[Tuple[str, str], ...] = (("aurora", "FisAuroraSecret"), ("rds", "FisMysqlSecret"))
REQUIRED_KEYS = ("host", "username", "password")
DEFAULT_DATABASE = "testdb"


def endpoints_from_secrets(pairs: Sequence[Tuple[str, str]], session: Any, table: str = "test") -> List[Endpoint]:
    """One Endpoint per (name, secret id), in the given order; AwsError on the first problem."""
    if not pairs:
        return []
    sm = client(session, "secretsmanager")
    return [endpoint_from_secret_string(name, secret_id, fetch_secret_string(sm, secret_id), table)
            for name, secret_id in pairs]


def fetch_secret_string(sm: Any, secret_id: str) -> str:
    """The SecretString of a secret; AwsError naming the secret otherwise."""
    try:
        response = sm.get_secret_value(SecretId=secret_id)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line
        code = _error_code(exc)
        if code == "ResourceNotFoundException":
            raise AwsError("secret %r not found in Secrets Manager (region %s): check the name and --region"
                           % (secret_id, _region(sm)))
        raise AwsError("cannot read secret %r: %s" % (secret_id, explain(exc)))
    text = response.get("SecretString")
    if not text:
        raise AwsError("secret %r has no SecretString (binary secrets are not supported): store the RDS "
                       "JSON (username, password, host, port, dbname)" % secret_id)
    return text


def endpoint_from_secret_string(name: str, secret_id: str, text: str, table: str = "test") -> Endpoint:
    """Pure: an RDS-shaped JSON secret as an Endpoint. Error messages never quote the value."""
    data = _parse(secret_id, text)
    missing = [key for key in REQUIRED_KEYS if not _text(data.get(key))]
    if missing:
        raise AwsError("secret %r (endpoint %s) has no %s: it must be RDS-shaped JSON with "
                       "username, password, host, port, dbname"
                       % (secret_id, name, " or ".join(repr(k) for k in missing)))
    port = _port(secret_id, data.get("port"))
    return Endpoint(
        name=name,
        host=_text(data["host"]),
        port=port,
        user=_text(data["username"]),
        database=_text(data.get("dbname")) or DEFAULT_DATABASE,
        table=table,
        password=Secret(str(data["password"])),
        source="secret:%s" % secret_id,
        cluster_id=_text(data.get("dbClusterIdentifier")) or None,
        instance_id=_text(data.get("dbInstanceIdentifier")) or None,
    )


def _parse(secret_id: str, text: str) -> Dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        # Never echo the text: it may be the password itself.
        raise AwsError("secret %r is not JSON: store the RDS-shaped JSON (username, password, host, port, "
                       "dbname)" % secret_id)
    if not isinstance(data, dict):
        raise AwsError("secret %r is JSON but not an object: store the RDS-shaped JSON" % secret_id)
    return data


def _port(secret_id: str, value: Any) -> int:
    from fiswatch.config.checks import ConfigError, check_port

    if value is None or value == "":
        return 3306
    try:
        return check_port(value)
    except ConfigError as exc:
        raise AwsError("secret %r: %s: fix its 'port' key" % (secret_id, exc))


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _error_code(exc: BaseException) -> Optional[str]:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


def _region(sm: Any) -> str:
    try:
        return sm.meta.region_name
    except AttributeError:  # pragma: no cover
        return "?"
