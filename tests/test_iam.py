"""What each function's code calls in AWS is exactly what its role allows, as IAM decides.

Both sides are derived, never listed by hand: the calls are recorded at the botocore edge
while each handler runs its sample events (events/) against moto, and the permissions come
from template.yaml after the SAM transform (tests/iam.py evaluates them like IAM). Every
call must be allowed; every action the template grants the code must be used by some call.
A static scan of the client calls in the modules each handler loads covers the paths the
events do not take.
S3 answers as AWS does for these roles: a missing key is 403 AccessDenied, not 404, unless
the role may list the bucket without conditions (moto always answers 404).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from chunker.format.read import ChunkReader, NotPublished
from chunker.format.s3 import object_exists
from functions.app.application import ROUTERS
from functions.app.settings import get_settings
from functions.aws_lambda import handlers
from tests.conftest import BUCKET
from tests.iam import (
    ACCOUNT,
    PARTITION,
    REGION,
    AwsEdge,
    Call,
    Physical,
    Request,
    Role,
    aws_edge,
    client_calls_in,
    iam_action,
    iam_requests,
    modules_loaded_by,
    roles,
    translated_template,
)
from tests.jwt_issuer import AUDIENCE, serve_issuer
from tests.rawday import build_raw_day
from tests.streaming import SECRET, TABLE, build_services, publish_day
from tests.test_control_handler import (
    EXPECTED_STATUS,
    SESSION_ID,
    LambdaContext,
    event_sample_session,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

EVENTS = Path(__file__).parent.parent / "events"
CHUNKER_ARN = f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:replay-ChunkerFunction-x1"
DAY = "2026-03-14"
STREAM_EVENTS = ("stream-open.json", "stream-resume.json", "stream-bad-token.json")


def arn_of(kind: str, name: str) -> str:
    """An ARN from the name a call passes (calls may pass a name or a full ARN)."""
    if name.startswith("arn:"):
        return name
    service = {"table": "dynamodb", "function": "lambda", "secret": "secretsmanager"}[kind]
    separator = "/" if kind == "table" else ":"
    return f"arn:{PARTITION}:{service}:{REGION}:{ACCOUNT}:{kind}{separator}{name}"


def deployment(secret_arn: str) -> dict[str, Physical]:
    """The names a stack would give the resources the policies refer to."""
    queue = f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:replay-ChunkerDeadLetterQueue-x1"
    return {
        "ReplayBucket": Physical(BUCKET, f"arn:{PARTITION}:s3:::{BUCKET}"),
        "SessionsTable": Physical(TABLE, arn_of("table", TABLE)),
        "StreamTokenSecret": Physical(secret_arn, secret_arn),
        "ChunkerFunction": Physical("replay-ChunkerFunction-x1", CHUNKER_ARN),
        "ChunkerDeadLetterQueue": Physical(queue.replace(":", "/"), queue),
    }


@pytest.fixture
def secret_arn(s3: S3Client) -> str:
    """The stream-token key in (moto's) Secrets Manager, as the template provides it."""
    client = boto3.client("secretsmanager", region_name=REGION)
    arn: str = client.create_secret(Name="StreamTokenSecret-x1", SecretString=SECRET)["ARN"]
    return arn


@pytest.fixture
def edge(secret_arn: str) -> Iterator[tuple[AwsEdge, dict[str, Role]]]:
    with aws_edge(arn_of) as the_edge:
        yield the_edge, roles(translated_template(), deployment(secret_arn))


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else action


def used_statements(role: Role, calls: list[Call]) -> list[dict[str, Any]]:
    return [s for c in calls for r in c.requests for s in role.allowing(r)]


def assert_exactly_allowed(role: Role, calls: list[Call]) -> None:
    """Every call allowed; every statement (and action) granted to the code used."""
    assert calls, f"{role.function}: no AWS call recorded"
    denied = sorted({str(r) for c in calls for r in c.denied})
    assert not denied, f"{role.function}'s role does not allow: {denied}"
    used = used_statements(role, calls)
    unused = [s for s in role.for_code if s not in used]
    assert not unused, f"{role.function} is granted what its code never does: {unused}"
    granted = {a for s in role.for_code for a in _actions(s)}
    needed = {r.action for c in calls for r in c.requests}
    assert granted <= needed, f"{role.function}: granted but never used: {granted - needed}"
    # Beyond the inline statements only what the runtime writes with (logs, X-Ray).
    assert all("AWSLambdaBasicExecutionRole" in str(m) or "Xray" in str(m) for m in role.managed)


# --- the control function ------------------------------------------------------------------


@pytest.fixture
def control_environment(
    s3: S3Client, secret_arn: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The control function as deployed: key from Secrets Manager, JWT claims in events."""
    publish_day(s3, airport="XLHI", seed=5)
    services = build_services(s3)
    services.sessions.create(event_sample_session(services))
    for name, value in {
        "REPLAY_BUCKET": BUCKET,
        "REPLAY_TABLE": TABLE,
        "AUTH_MODE": "jwt",
        "STREAM_TOKEN_SECRET_ARN": secret_arn,
        "STREAM_MAX_SECONDS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("STREAM_TOKEN_SECRET", raising=False)
    get_settings.cache_clear()
    monkeypatch.setattr(handlers, "_adapter", None)
    yield
    get_settings.cache_clear()


def event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


def drive_http_function(
    edge: tuple[AwsEdge, dict[str, Role]],
    function: str,
    handler: Any,
    expected: dict[str, int],
    events: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Each event (file) through ``handler`` as ``function``'s role, in order: statuses
    as expected, calls exactly what the role allows."""
    the_edge, all_roles = edge
    role = all_roles[function]
    loaded = events or {name: event(name) for name in expected}
    with the_edge.acting_as(role) as calls:
        statuses = {name: handler(loaded[name], LambdaContext())["statusCode"] for name in expected}
    assert_exactly_allowed(role, calls)
    assert statuses == expected


def test_the_control_function_calls_exactly_what_its_role_allows(
    control_environment: None, edge: tuple[AwsEdge, dict[str, Role]]
) -> None:
    # Under AWS's 403-for-missing-keys the answers are the ones moto's 404s give (an
    # unknown airport is still 404, not 503). The session is deleted last.
    last = "control-delete-session.json"
    expected = {n: s for n, s in EXPECTED_STATUS.items() if n != last}
    expected[last] = EXPECTED_STATUS[last]
    drive_http_function(edge, "ControlFunction", handlers.control_handler, expected)


def test_the_stream_function_calls_exactly_what_its_role_allows(
    control_environment: None,
    edge: tuple[AwsEdge, dict[str, Role]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with serve_issuer() as issuer:
        # The legacy client's stream with a real bearer JWT: it creates its session from here.
        monkeypatch.setenv("JWT_ISSUER", issuer.url)
        monkeypatch.setenv("JWT_AUDIENCE", f"other-client,{AUDIENCE}")
        legacy = event("stream-legacy.json")
        legacy["headers"]["authorization"] = f"Bearer {issuer.token()}"
        events = {**{n: event(n) for n in STREAM_EVENTS}, "stream-legacy.json": legacy}
        expected = {
            "stream-open.json": 200,
            "stream-resume.json": 200,
            "stream-bad-token.json": 401,
            "stream-legacy.json": 200,
        }
        drive_http_function(edge, "StreamFunction", handlers.stream_handler, expected, events)


# --- the chunker ---------------------------------------------------------------------------


class ChunkerContext:
    """The parts of a Lambda context the chunker reads."""

    function_name = "replay-ChunkerFunction-x1"
    memory_limit_in_mb = 2048
    invoked_function_arn = CHUNKER_ARN
    aws_request_id = "req-chunker"


@pytest.fixture
def chunker_handler(s3: S3Client, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("REPLAY_BUCKET", BUCKET)
    monkeypatch.setenv("CHUNK_BUCKET_MS", "600000")
    monkeypatch.setenv("CHUNK_HISTOGRAM_BIN_MS", "600000")
    for key, body in build_raw_day(seed=4, hours=(6, 8), airport="XLHI").objects().items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    import chunker.batch.lambda_handler

    return importlib.reload(
        chunker.batch.lambda_handler
    )  # module-level settings and client under the mock


def test_the_chunker_calls_exactly_what_its_role_allows(
    chunker_handler: ModuleType, s3: S3Client, edge: tuple[AwsEdge, dict[str, Role]]
) -> None:
    the_edge, all_roles = edge
    role = all_roles["ChunkerFunction"]
    invoked: list[dict[str, Any]] = []

    def accept_invoke(params: dict[str, Any]) -> dict[str, Any]:
        invoked.append(params)
        return {"StatusCode": 202}

    the_edge.answers["lambda.Invoke"] = accept_invoke
    results = {}
    with the_edge.acting_as(role) as calls:
        # The first build of a day: "is this version built?" must be a clean "no" under
        # 403-for-missing-keys, not an error that sends every first build to the DLQ.
        for name in (
            "chunker-fan-out-previous-day.json",
            "chunker-on-demand-day.json",
            "chunker-on-demand-hours.json",
            "chunker-force-rebuild.json",
            "chunker-scheduled-previous-day.json",
            "chunker-hourly-current-day.json",
        ):
            request = event(name)
            if request["service_date"] in ("previous", "current"):
                # The schedules' relative dates, resolved to the recorded day.
                request = {**request, "service_date": DAY}
            results[name] = chunker_handler.handler(request, ChunkerContext())
    assert results["chunker-fan-out-previous-day.json"]["jobs"] == 12
    assert {p["FunctionName"] for p in invoked} == {CHUNKER_ARN}  # itself, by its ARN
    assert results["chunker-on-demand-day.json"]["published"] is True
    assert results["chunker-on-demand-day.json"]["already_published"] is False
    assert results["chunker-scheduled-previous-day.json"]["already_published"] is True
    assert_exactly_allowed(role, calls)


# --- the not-found rule itself -------------------------------------------------------------


def test_missing_keys_are_told_apart_from_denied_reads_without_list_bucket(
    s3: S3Client, edge: tuple[AwsEdge, dict[str, Role]]
) -> None:
    """As the control role (ListBucket only under published/): a missing pointer is
    NotPublished; a read the role may not make stays an error."""
    the_edge, all_roles = edge
    publish_day(s3, airport="XLHI", seed=5)
    reader = ChunkReader(s3, BUCKET)
    with the_edge.acting_as(all_roles["ControlFunction"]) as calls:
        assert str(reader.published("XLHI", DAY).manifest.service_date) == DAY
        with pytest.raises(NotPublished):
            reader.published("XLHI", "2026-03-15")
        assert object_exists(s3, BUCKET, f"published/XLHI/{DAY}.json")
        with pytest.raises(Exception, match="AccessDenied"):
            s3.get_object(Bucket=BUCKET, Key="raw/XLHI/2026-03-14/reference.json")
    missing_get = next(c for c in calls if c.operation == "s3.GetObject" and "03-15" in str(c))
    assert not missing_get.denied  # allowed, and still 403: the rule, not the policy


# --- the same from the source: calls on paths the sample events do not take -----------------

# Client calls in shipped modules that no deployed function makes, and why.
LOCAL_ONLY = {
    "dynamodb:CreateTable": "functions.local.stack.ensure_table: the local stack's table",
    "dynamodb:UpdateTimeToLive": "functions.local.stack.ensure_table: the local stack's table",
}


def static_actions(import_name: str) -> dict[str, list[str]]:
    """IAM action -> call sites, for every client call in the modules a handler loads."""
    found: dict[str, list[str]] = {}
    for (service, operation), where in client_calls_in(modules_loaded_by(import_name)).items():
        found.setdefault(iam_action(service, operation), []).extend(where)
    return found


def granted_to_code(*functions: str) -> set[str]:
    fake_secret = f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:key-x1"
    all_roles = roles(translated_template(), deployment(fake_secret))
    return {a for f in functions for s in all_roles[f].for_code for a in _actions(s)}


@pytest.mark.parametrize(
    ("import_name", "functions"),
    [
        ("chunker.batch.lambda_handler", ("ChunkerFunction",)),
        # One app factory serves both (the stream function through the bridge), each
        # function importing its route groups' modules (APP_ROUTES); together they are
        # every route module. Each function's own share is what test_*_calls_exactly_*
        # records.
        (
            ", ".join(["functions.app.application", *(module for module, _ in ROUTERS)]),
            ("ControlFunction", "StreamFunction"),
        ),
    ],
)
def test_every_client_call_in_the_shipped_code_is_granted_and_nothing_else(
    import_name: str, functions: tuple[str, ...]
) -> None:
    in_code = static_actions(import_name)
    assert in_code, "the scan found no client call"
    needed = set(in_code) - set(LOCAL_ONLY)
    granted = granted_to_code(*functions)
    missing = {a: in_code[a] for a in needed - granted}
    assert not missing, f"called in code, granted to none of {functions}: {missing}"
    assert granted <= needed, f"granted, but no code calls it: {granted - needed}"


def test_the_stream_role_reads_lease_items_but_no_session_item_one_by_one(
    edge: tuple[AwsEdge, dict[str, Role]],
) -> None:
    """The StreamLeases statement is bounded by ``dynamodb:LeadingKeys`` as IAM evaluates
    it: a GetItem of a lease is allowed, of a session is not (the stream reads sessions
    only with BatchGetItem and its one UpdateItem at open)."""
    stream = edge[1]["StreamFunction"]
    table = arn_of("table", TABLE)

    def get_item(key: str) -> Request:
        params = {"TableName": TABLE, "Key": {"session_id": {"S": key}}}
        (request,) = iam_requests("dynamodb", "GetItem", params, arn_of)
        assert request.resource == table
        return request

    assert stream.allows(get_item("lease#user#alice"))
    assert not stream.allows(get_item(SESSION_ID))
