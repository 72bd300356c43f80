"""AWS sessions and one-line explanations of AWS failures.

boto3 is imported here, lazily, inside functions: commands that never touch AWS never
pay for it. Credentials, profile and region come from the standard chain (environment,
~/.aws files, instance role); botocore itself honours AWS_ENDPOINT_URL and
AWS_ENDPOINT_URL_<SERVICE> (botocore >= 1.31), which is how the tests point fiswatch at moto.
"""
import os
import warnings
from typing import Any, Optional, Tuple

# Timeouts and retries for every client fiswatch creates: a stuck AWS call must never
# hold a watcher thread (or the user) for long. An endpoint that accepts and never answers
# costs at most MAX_ATTEMPTS * READ_TIMEOUT plus one backoff (under 8 s), then says
# "AWS did not answer in time"; a throttled call is still retried once.
CONNECT_TIMEOUT = 2
READ_TIMEOUT = 3
MAX_ATTEMPTS = 2
READ_TIMEOUT_ENV = "FISWATCH_AWS_READ_TIMEOUT"  # seconds, 1..120: a slow link (or a local moto on a busy machine)


def read_timeout(environ: Any = None) -> float:
    """The read timeout of every AWS client: READ_TIMEOUT, or FISWATCH_AWS_READ_TIMEOUT when it holds a
    number of seconds from 1 to 120 (anything else is ignored: the default is the safe side).

    >>> read_timeout({}), read_timeout({"FISWATCH_AWS_READ_TIMEOUT": "15"}), read_timeout({"FISWATCH_AWS_READ_TIMEOUT": "x"})
    (3.0, 15.0, 3.0)
    """
    raw = (os.environ if environ is None else environ).get(READ_TIMEOUT_ENV, "")
    try:
        value = float(raw)
    except ValueError:
        return float(READ_TIMEOUT)
    return value if 1.0 <= value <= 120.0 else float(READ_TIMEOUT)


class AwsError(Exception):
    """An AWS problem already reduced to one line: what went wrong and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))

    def __str__(self) -> str:
        return self.args[0] if self.args else "AWS error"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _quiet_boto3_warnings() -> None:
    # boto3 on Python 3.9 warns on every session that 3.9 support ends; the workshop's
    # instances run 3.9, and that warning would land on the dashboard's terminal.
    warnings.filterwarnings("ignore", message=r"Boto3 will no longer support Python")


def _region_from_instance_metadata() -> Optional[str]:
    """The instance's region from IMDS, as the AWS CLI would find it on EC2.

    botocore does not use IMDS for the region on its own. Respects
    AWS_EC2_METADATA_DISABLED (the tests set it), one attempt, 1 s timeout.
    """
    if os.environ.get("AWS_EC2_METADATA_DISABLED", "false").lower() == "true":
        return None
    try:
        from botocore.utils import InstanceMetadataRegionFetcher

        return InstanceMetadataRegionFetcher(timeout=1, num_attempts=1).retrieve_region()
    except Exception:  # noqa: BLE001 - no metadata service is the normal case off EC2
        return None


def region_from_environment() -> Optional[str]:
    """AWS_REGION, when set: it wins over AWS_DEFAULT_REGION and the profile, as in the AWS CLI."""
    return (os.environ.get("AWS_REGION") or "").strip() or None


def make_session(profile: Optional[str] = None, region: Optional[str] = None) -> Any:
    """A boto3 Session from the standard chain; raises AwsError with one clear line."""
    _quiet_boto3_warnings()
    try:
        import boto3.session
        import botocore.exceptions
    except ImportError:
        raise AwsError("boto3 is not installed: run `pip install boto3` (fiswatch needs it for AWS features)")
    # AWS_REGION (what AWS CloudShell, Lambda and the AWS CLI v2 use) first, as the CLI does;
    # botocore itself reads only AWS_DEFAULT_REGION and the profile.
    region = region or region_from_environment()
    try:
        session = boto3.session.Session(profile_name=profile or None, region_name=region or None)
    except botocore.exceptions.ProfileNotFound:
        raise AwsError("AWS profile %r not found in ~/.aws/config or ~/.aws/credentials: "
                       "check --profile / AWS_PROFILE" % profile)
    except Exception as exc:  # noqa: BLE001 - a broken ~/.aws file, for instance
        raise AwsError(explain(exc))
    if not session.region_name:
        found = _region_from_instance_metadata()
        if found:
            session = boto3.session.Session(profile_name=profile or None, region_name=found)
        else:
            raise AwsError("no AWS region configured: pass --region (e.g. --region us-east-1) "
                           "or set AWS_REGION / AWS_DEFAULT_REGION")
    return session


def client(session: Any, service: str) -> Any:
    """A client with short timeouts and standard retries (throttling is retried)."""
    from botocore.config import Config

    config = Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=read_timeout(),
                    retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"})
    try:
        return session.client(service, config=config)
    except Exception as exc:  # noqa: BLE001
        raise AwsError(explain(exc))


_WHAT_TO_DO = {
    "access": "check the IAM permissions of the instance role or profile in use",
    "notfound": "check the name/id and the region (--region)",
    "throttle": "AWS is throttling this account; wait a little and try again",
    "token": "the credentials expired or are invalid; refresh them (aws sso login, new keys, or the instance role)",
}


def explain(exc: BaseException) -> str:
    """One line saying what went wrong with an AWS call and what to do about it.

    Never includes request parameters or secret values: only error codes and AWS's
    own message (which names resources, not their contents).
    """
    if isinstance(exc, AwsError):
        return str(exc)
    try:
        import botocore.exceptions as bx
    except ImportError:  # pragma: no cover - boto3 missing is caught in make_session
        return _one_line("%s: %s" % (type(exc).__name__, exc))

    if isinstance(exc, bx.NoCredentialsError):
        return ("no AWS credentials found: attach an instance role, run `aws configure`, "
                "or set AWS_PROFILE / AWS_ACCESS_KEY_ID")
    if isinstance(exc, bx.PartialCredentialsError):
        return "incomplete AWS credentials (%s): check ~/.aws/credentials or the environment" % exc
    if isinstance(exc, bx.NoRegionError):
        return "no AWS region configured: pass --region or set AWS_REGION / AWS_DEFAULT_REGION"
    if isinstance(exc, bx.ProfileNotFound):
        return "AWS profile not found (%s): check --profile / AWS_PROFILE" % exc
    if isinstance(exc, bx.ClientError):
        return _explain_client_error(exc)
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError)):
        return ("cannot reach the AWS endpoint (%s): check the network, proxy settings and "
                "AWS_ENDPOINT_URL*" % _endpoint_of(exc))
    if isinstance(exc, bx.ReadTimeoutError):
        return "AWS did not answer in time (%s): try again" % _endpoint_of(exc)
    if isinstance(exc, bx.ParamValidationError):
        return _one_line("invalid AWS request: %s" % exc)
    if isinstance(exc, bx.BotoCoreError):
        return _one_line("AWS SDK error: %s" % exc)
    return _one_line("%s: %s" % (type(exc).__name__, exc))


def _endpoint_of(exc: BaseException) -> str:
    kwargs = getattr(exc, "kwargs", {}) or {}
    return str(kwargs.get("endpoint_url") or "endpoint unknown")


def _xml_error(text: str) -> Optional[Tuple[str, str]]:
    """(Code, Message) from an AWS XML error body that the SDK passed on raw, else None.

    >>> _xml_error('<?xml version="1.0"?><ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId'
    ...            '</Code><Message>The security token included in the request is invalid.</Message></Error>'
    ...            '</ErrorResponse>')
    ('InvalidClientTokenId', 'The security token included in the request is invalid.')
    >>> _xml_error("plain words") is None
    True
    """
    import re

    if "<" not in text:
        return None
    code = re.search(r"<Code>\s*([^<]{1,200}?)\s*</Code>", text)
    message = re.search(r"<Message>\s*([^<]{0,500}?)\s*</Message>", text)
    if code is None:
        return None
    return code.group(1), _one_line(message.group(1)) if message else ""


def _explain_client_error(exc: Any) -> str:
    error = exc.response.get("Error", {}) if hasattr(exc, "response") else {}
    code = str(error.get("Code") or "Unknown")
    message = _one_line(error.get("Message") or "")
    raw = _xml_error(message) or _xml_error(code)  # a body the SDK could not parse (e.g. XML to a JSON client)
    if raw is not None:
        code, message = raw
    elif "<" in message:
        message = "an error body the SDK could not read"
    operation = getattr(exc, "operation_name", "") or "call"
    head = "AWS %s failed: %s%s" % (operation, code, (" (%s)" % message) if message else "")
    lowered = code.lower()
    if lowered.startswith("accessdenied") or lowered in ("unauthorizedoperation", "authorizationerror",
                                                          "accessdeniedexception"):
        todo = _WHAT_TO_DO["access"]
    elif "throttl" in lowered or lowered in ("requestlimitexceeded", "toomanyrequestsexception",
                                             "slowdown", "ratelimitexceeded"):
        todo = _WHAT_TO_DO["throttle"]
    elif "notfound" in lowered or lowered in ("nosuchentity", "resourcenotfoundexception"):
        todo = _WHAT_TO_DO["notfound"]
    elif lowered in ("expiredtoken", "expiredtokenexception", "invalidclienttokenid",
                     "unrecognizedclientexception", "signaturedoesnotmatch", "invalidsignatureexception"):
        todo = _WHAT_TO_DO["token"]
    elif lowered == "decryptionfailure":
        todo = "the role cannot use the secret's KMS key; grant kms:Decrypt on it"
    else:
        todo = ""
    return head + ("; " + todo if todo else "")
