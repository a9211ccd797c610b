"""template.yaml against the code: handlers resolve, events are exercised, policies are tight.

(``cfn-lint template.yaml`` runs in ``make lint``.)"""

from __future__ import annotations

import importlib
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.iam import translated_template

ROOT = Path(__file__).parent.parent


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form intrinsic functions (``!Ref`` etc.)."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {suffix: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)
TEMPLATE: dict[str, Any] = yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
FUNCTIONS = {
    name: r["Properties"]
    for name, r in RESOURCES.items()
    if r["Type"] == "AWS::Serverless::Function"
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_handler_resolves_to_an_importable_callable(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLAY_BUCKET", "handler-import-check")  # the chunker reads it at import
    module_name, _, attribute = FUNCTIONS[name]["Handler"].rpartition(".")
    assert (
        (ROOT / FUNCTIONS[name]["CodeUri"] / module_name.replace(".", "/"))
        .with_suffix(".py")
        .exists()
    )
    handler = getattr(importlib.import_module(module_name), attribute)
    assert callable(handler)


def test_the_stream_function_streams_through_the_exec_wrapper() -> None:
    stream = FUNCTIONS["StreamFunction"]
    assert stream["FunctionUrlConfig"]["InvokeMode"] == "RESPONSE_STREAM"
    assert stream["Timeout"] == 900
    assert int(stream["Environment"]["Variables"]["STREAM_MAX_SECONDS"]) < stream["Timeout"]
    wrapper = stream["Environment"]["Variables"]["AWS_LAMBDA_EXEC_WRAPPER"]
    relative = wrapper.removeprefix("/var/task/")
    assert (ROOT / relative).stat().st_mode & stat.S_IXUSR
    mode = subprocess.run(
        ["git", "ls-files", "-s", relative], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()[0]
    assert mode == "100755", "the wrapper must be committed executable"


def test_every_sample_event_is_driven_by_a_test() -> None:
    tests_text = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    handler_test = (ROOT / "tests" / "test_control_handler.py").read_text()
    for event in sorted((ROOT / "events").glob("*.json")):
        assert event.name in tests_text or event.name in handler_test, f"{event.name} is unused"


def _statements(properties: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for policy in properties.get("Policies", []):
        found += policy.get("Statement", []) if isinstance(policy, dict) else []
    return found


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_policies_are_least_privilege(name: str) -> None:
    statements = _statements(FUNCTIONS[name])
    assert statements, f"{name} has inline statements, not broad managed policies"
    for statement in statements:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert all("*" not in action for action in actions), statement
        resources = statement["Resource"]
        assert resources != "*" and "*" not in (resources if isinstance(resources, list) else [])


def test_bucket_is_private_encrypted_and_tls_only() -> None:
    bucket = RESOURCES["ReplayBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    policy = RESOURCES["ReplayBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert policy["Effect"] == "Deny" and policy["Condition"]["Bool"]["aws:SecureTransport"] == (
        "false"
    )
    table = RESOURCES["SessionsTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"]["Enabled"] is True
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_no_secret_is_written_into_the_template_or_code() -> None:
    text = (ROOT / "template.yaml").read_text()
    assert "STREAM_TOKEN_SECRET:" not in text  # only the ARN of the generated secret
    assert re.search(r"STREAM_TOKEN_SECRET_ARN: !Ref StreamTokenSecret", text)


# --- the template as AWS applies it (after the SAM transform) -----------------------------

TRANSLATED = translated_template()
GENERATED: dict[str, Any] = TRANSLATED["Resources"]
OPERATION_KEYS = {"get", "post", "put", "patch", "delete", "head", "options"}


def _http_api_routes() -> list[tuple[str, str, list[Any]]]:
    """(method, path, security) of every route of the HTTP API, as API Gateway imports them."""
    body = GENERATED["ReplayHttpApi"]["Properties"]["Body"]
    routes = []
    for path, operations in body["paths"].items():
        for key, operation in operations.items():
            method = "ANY" if key == "x-amazon-apigateway-any-method" else key.upper()
            if key in OPERATION_KEYS or method == "ANY":
                routes.append((method, path, operation.get("security", [])))
    return routes


def _path_matches(template: str, path: str) -> bool:
    """API Gateway's path matching: ``{name}`` one segment, ``{name+}`` one or more."""
    pattern = re.escape(template)
    pattern = re.sub(r"\\\{[^}]+\\\+\\\}", r"[^?]+", pattern)  # greedy
    pattern = re.sub(r"\\\{[^}]+\\\}", r"[^/]+", pattern)
    return re.fullmatch(pattern, path) is not None


def _matching(method: str, path: str) -> list[tuple[str, str, list[Any]]]:
    return [r for r in _http_api_routes() if r[0] in (method, "ANY") and _path_matches(r[1], path)]


def _app_operations() -> list[tuple[str, str]]:
    """(method, concrete path) of every operation the app serves under /api."""
    from functions.app.application import create_app
    from functions.app.dependencies import Services
    from tests.streaming import settings

    app = create_app(Services(settings=settings(), sessions=None, chunks=None))  # type: ignore[arg-type]
    operations = []
    for path, methods in app.openapi()["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x1", path)
        operations += [(m.upper(), concrete) for m in methods if m in OPERATION_KEYS]
    return [(m, p) for m, p in operations if p.startswith("/api/")]


def test_every_api_operation_is_routed_behind_the_jwt_authorizer() -> None:
    operations = _app_operations()
    assert len(operations) >= 15
    for method, path in operations:
        routes = _matching(method, path)
        assert routes, f"{method} {path} reaches no route of the HTTP API"
        assert all(security == [{"Jwt": []}] for _, _, security in routes), (method, path)


def test_cors_preflights_are_answered_without_a_token() -> None:
    """A preflight carries no Authorization header: a route with the JWT authorizer would
    answer it 401. With CORS configured and no route for OPTIONS, API Gateway answers
    preflights itself (docs: "Configure CORS for HTTP APIs")."""
    for _, path in _app_operations():
        for _, _, security in _matching("OPTIONS", path):
            assert security in ([], [{}]), f"OPTIONS {path} would need a token"
    body = GENERATED["ReplayHttpApi"]["Properties"]["Body"]
    cors = body["x-amazon-apigateway-cors"]
    assert cors["allowOrigins"] == [TEMPLATE["Parameters"]["DashboardOrigin"]["Default"]]
    assert {m for m, _ in _app_operations()} <= set(cors["allowMethods"])
    # What the dashboard sends cross-origin.
    assert {"authorization", "content-type", "if-match"} <= set(cors["allowHeaders"])
    assert {"etag", "location", "retry-after"} <= set(cors["exposeHeaders"])


def test_a_second_stack_in_the_account_gets_its_own_names() -> None:
    schedules = [r for r in GENERATED.values() if r["Type"] == "AWS::Scheduler::Schedule"]
    assert len(schedules) == 2
    assert all("Name" not in s["Properties"] for s in schedules)  # CloudFormation names them
    for resource in GENERATED.values():
        # A fixed or "${AWS::StackName}-..." name collides or passes 64 characters.
        assert "FunctionName" not in resource["Properties"] or resource["Type"] != (
            "AWS::Lambda::Function"
        )


@pytest.mark.parametrize(
    "name", ["ReplayBucket", "SessionsTable", "StreamTokenSecret", "ChunkerDeadLetterQueue"]
)
def test_stateful_resources_survive_a_stack_delete_or_replacement(name: str) -> None:
    resource = GENERATED[name]
    assert resource["DeletionPolicy"] == "Retain" and resource["UpdateReplacePolicy"] == "Retain"
    assert f"`{name}`" in (ROOT / "docs" / "operations.md").read_text()  # and says why


def test_each_function_names_its_own_service() -> None:
    """Logs and metrics carry the function's name from POWERTOOLS_SERVICE_NAME, and no
    module overrides it with a literal (the stream function once logged under two)."""
    names = {
        name: FUNCTIONS[name]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for name in FUNCTIONS
    }
    assert names == {
        "ControlFunction": "dispatch-replay-api",
        "StreamFunction": "dispatch-replay-stream",
        "ChunkerFunction": "dispatch-replay-chunker",
    }
    literal = re.compile(r"Logger\(\s*service=|Metrics\([^)]*service=")
    for path in [*(ROOT / "functions").rglob("*.py"), *(ROOT / "chunker").rglob("*.py")]:
        assert not literal.search(path.read_text()), path
