"""The container path as AWS and Docker would take it: the Dockerfile's rules, the nested
template's settings, the task role as IAM evaluates it.

No Docker daemon here: ``make lint`` lints the Dockerfile (hadolint) and container.yaml
(cfn-lint), and the Dockerfile's rules are read from the file below; the folder its build
stage makes is served in tests/test_container_artifact.py, the drains (SIGTERM, the target
leaving) in tests/test_container_drain.py.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from samtranslator.yaml_helper import yaml_parse

from functions.app.application import readiness
from functions.app.dependencies import Services
from functions.app.settings import AppSettings, get_settings
from functions.aws_lambda import handlers
from functions.container import serve, target
from tests.iam import (
    AwsEdge,
    Physical,
    Role,
    client_calls_in,
    iam_action,
    modules_loaded_by,
    translated_template,
)
from tests.jwt_issuer import AUDIENCE, serve_issuer
from tests.test_control_handler import LambdaContext
from tests.test_iam import (
    LOCAL_ONLY,
    STREAM_EVENTS,
    assert_exactly_allowed,
    control_environment,
    deployment,
    edge,
    event,
    secret_arn,
)
from tests.test_template import RESOURCES, TEMPLATE, _CfnLoader

__all__ = ["control_environment", "edge", "secret_arn"]  # fixtures from tests/test_iam.py

ROOT = Path(__file__).parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
CONTAINER: dict[str, Any] = yaml.load((ROOT / "container.yaml").read_text(), Loader=_CfnLoader)
C_RESOURCES: dict[str, Any] = CONTAINER["Resources"]


# --- the Dockerfile ----------------------------------------------------------------------


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each instruction, continuation lines joined."""
    logical = re.sub(r"\\\n", " ", text)
    found = []
    for line in logical.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            name, _, rest = stripped.partition(" ")
            found.append((name.upper(), rest.strip()))
    return found


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for name, rest in instructions(DOCKERFILE):
        if name == "FROM":
            found.append([])
        found[-1].append((name, rest))
    return found


def test_the_image_is_multi_stage_from_one_pinned_base() -> None:
    bases = [rest.split()[0] for name, rest in instructions(DOCKERFILE) if name == "FROM"]
    assert len(bases) == 2
    for base in bases:
        # An exact patch version, or a digest: never "latest" or a moving "3.12".
        assert re.search(r"@sha256:[0-9a-f]{64}$|:\d+\.\d+\.\d+-", base), base
    # The build stage compiles the byte-code the runtime stage's Python runs.
    assert len(set(bases)) == 1
    assert bases[0].split(":")[1].startswith("3.12.")  # lambda_build.PYTHON_VERSION


def test_the_build_stage_is_the_artifact_recipe_and_the_runtime_stage_copies_only_its_folder() -> (
    None
):
    build, runtime = stages()
    runs = [rest for name, rest in build if name == "RUN"]
    assert any("lambda_build.py ContainerService /app" in run for run in runs)
    copies = [shlex.split(rest) for name, rest in runtime if name in ("COPY", "ADD")]
    assert copies and all(c[0] == "--from=build" and "/app" in c for c in copies), copies
    # The build context holds only what the build stage copies.
    ignore = [line for line in (ROOT / ".dockerignore").read_text().split("\n") if line[:1] != "#"]
    assert ignore[0] == "*"  # everything out, then what is needed back in
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "constraints.txt",
        "lambda_build.py",
        "functions",
        "chunker",
    }
    copied = {shlex.split(rest)[0].rstrip("/") for name, rest in build if name == "COPY"}
    assert copied <= allowed | {"pyproject.toml"}


def test_the_runtime_stage_runs_as_a_non_root_user_stops_on_sigterm_and_checks_healthz() -> None:
    _, runtime = stages()
    names = [name for name, _ in runtime]
    user = [rest for name, rest in runtime if name == "USER"]
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert names.index("USER") < names.index("ENTRYPOINT")
    assert dict(runtime)["STOPSIGNAL"] == "SIGTERM"
    health = dict(runtime)["HEALTHCHECK"]
    assert "functions.container.healthcheck" in health
    assert '["python", "-m", "functions.container"]' in dict(runtime)["ENTRYPOINT"]  # exec form
    assert "/healthz" in (ROOT / "functions" / "container" / "healthcheck.py").read_text()


# --- the nested template -------------------------------------------------------------------


def test_the_container_path_is_an_optional_nested_stack_of_the_main_template() -> None:
    nested = RESOURCES["ContainerStreams"]
    assert nested["Type"] == "AWS::Serverless::Application"
    assert nested["Condition"] == "WithContainer"
    assert nested["Properties"]["Location"] == "container.yaml"
    assert TEMPLATE["Parameters"]["ContainerStreaming"]["Default"] == "DISABLED"
    # Every parameter the nested template needs without a default is passed.
    required = {n for n, p in CONTAINER["Parameters"].items() if "Default" not in p}
    assert required <= set(nested["Properties"]["Parameters"])
    # As CloudFormation gets it: a nested stack under the condition, every parameter a
    # string (nested stacks take no lists).
    stack = translated_template()["Resources"]["ContainerStreams"]
    assert stack["Type"] == "AWS::CloudFormation::Stack"
    assert stack["Condition"] == "WithContainer"
    assert stack["Properties"]["TemplateURL"] == "container.yaml"  # `sam package` uploads it
    for name, value in stack["Properties"]["Parameters"].items():
        assert not isinstance(value, list), name
        if CONTAINER["Parameters"][name]["Type"].startswith("List<"):
            assert "Fn::Join" in value, name
    # With it, the control API hands out stream URLs on the container's domain.
    control = RESOURCES["ControlFunction"]["Properties"]["Environment"]["Variables"]
    assert control["STREAM_BASE_URL"]["If"][0] == "WithContainer"


def test_the_load_balancer_keeps_streams_open_over_http2_and_balances_open_streams() -> None:
    balancer = C_RESOURCES["LoadBalancer"]["Properties"]
    attributes = {a["Key"]: a["Value"] for a in balancer["LoadBalancerAttributes"]}
    heartbeat = AppSettings.model_fields["stream_heartbeat_s"]
    heartbeat_max = next(m.le for m in heartbeat.metadata if hasattr(m, "le"))
    assert int(attributes["idle_timeout.timeout_seconds"]) > heartbeat_max
    assert attributes["routing.http2.enabled"] == "true"
    listener = C_RESOURCES["HttpsListener"]["Properties"]
    assert listener["Protocol"] == "HTTPS"  # browsers get HTTP/2 only over TLS
    group = C_RESOURCES["TargetGroup"]["Properties"]
    assert group["HealthCheckPath"] == "/healthz"
    group_attributes = {a["Key"]: a["Value"] for a in group["TargetGroupAttributes"]}
    assert group_attributes["load_balancing.algorithm.type"] == "least_outstanding_requests"
    # The task keeps idle connections open longer than the ALB (else a 502 on reuse).
    assert serve.ContainerSettings().keep_alive_s > int(attributes["idle_timeout.timeout_seconds"])


def test_the_task_stops_after_its_drain_and_scales_on_cpu() -> None:
    container = C_RESOURCES["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    environment = {e["Name"]: e["Value"] for e in container["Environment"]}
    drain = float(environment["DRAIN_TIMEOUT_S"])
    assert container["StopTimeout"] > drain  # SIGKILL never lands mid-drain
    assert container["StopTimeout"] <= 120  # Fargate's maximum
    assert environment["TARGET_GROUP_ARN"] == {"Ref": "TargetGroup"}
    assert "functions.container.healthcheck" in container["HealthCheck"]["Command"]
    assert container["ReadonlyRootFilesystem"] is True and container["User"].startswith("10001")
    dockerfile_user = next(r for n, r in stages()[1] if n == "USER")
    assert container["User"] == dockerfile_user
    policy = C_RESOURCES["CpuTracking"]["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert policy["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "ECSServiceAverageCPUUtilization"
    )
    assert policy["ScaleInCooldown"] >= 300  # each scale-in reconnects a task's streams


# --- the task role ---------------------------------------------------------------------------


def task_role(secret: str) -> Role:
    """The task role's statements, resolved for the test deployment (the parent passes the
    bucket, table and secret in as parameters)."""
    from tests.iam import resolve

    physical = deployment(secret)
    parameters = {
        "BucketArn": physical["ReplayBucket"].arn,
        "TableArn": physical["SessionsTable"].arn,
        "StreamTokenSecretArn": physical["StreamTokenSecret"].arn,
    }
    physical |= {name: Physical(value, value) for name, value in parameters.items()}
    template = yaml_parse((ROOT / "container.yaml").read_text())
    role = template["Resources"]["TaskRole"]["Properties"]
    statements = [
        s for p in role["Policies"] for s in resolve(p["PolicyDocument"]["Statement"], physical)
    ]
    return Role("ContainerTask", statements, role.get("ManagedPolicyArns", []))


def test_the_task_role_is_the_stream_functions_plus_its_own_target_health(
    edge: tuple[AwsEdge, dict[str, Role]], secret_arn: str
) -> None:
    role = task_role(secret_arn)
    stream = edge[1]["StreamFunction"]
    own = [s for s in role.statements if s["Sid"] == "OwnTargetHealth"]
    assert [s for s in role.statements if s not in own] == stream.for_code
    assert own == [
        {
            "Sid": "OwnTargetHealth",
            "Effect": "Allow",
            "Action": "elasticloadbalancing:DescribeTargetHealth",
            "Resource": "*",
        }
    ]
    assert role.managed == []


def test_the_task_calls_exactly_what_its_role_allows(
    control_environment: None,
    edge: tuple[AwsEdge, dict[str, Role]],
    secret_arn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The app's stream routes (the same code whatever serves it: the handler here, as in
    tests/test_iam.py), the readiness probe and the target-health watch, as the task role."""
    the_edge, _ = edge
    role = task_role(secret_arn)
    ec2, elbv2 = boto3.client("ec2"), boto3.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    group = elbv2.create_target_group(
        Name="stream", Protocol="HTTP", Port=8000, VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": "10.0.0.5", "Port": 8000}])
    with serve_issuer() as issuer:
        monkeypatch.setenv("JWT_ISSUER", issuer.url)
        monkeypatch.setenv("JWT_AUDIENCE", AUDIENCE)
        legacy = event("stream-legacy.json")
        legacy["headers"]["authorization"] = f"Bearer {issuer.token()}"
        events = {**{n: event(n) for n in STREAM_EVENTS}, "stream-legacy.json": legacy}
        with the_edge.acting_as(role) as calls:
            statuses = {
                n: handlers.stream_handler(e, LambdaContext())["statusCode"]
                for n, e in events.items()
            }
            checks = asyncio.run(readiness(Services.from_settings(get_settings())))
            answer = target.describe_self(elbv2, group, "10.0.0.5", 8000)
    assert statuses == {
        "stream-open.json": 200,
        "stream-resume.json": 200,
        "stream-bad-token.json": 401,
        "stream-legacy.json": 200,
    }
    assert checks == {"sessions_table": "ok", "bucket": "ok"}
    assert target.state_of(answer, "10.0.0.5", 8000) == "healthy"
    assert_exactly_allowed(role, calls)


def test_every_client_call_the_container_ships_is_granted_to_its_task() -> None:
    """From the source: the modules the container's server loads (the app included)."""
    in_code: dict[str, list[str]] = {}
    for (service, operation), where in client_calls_in(
        modules_loaded_by("functions.container.serve")
    ).items():
        in_code.setdefault(iam_action(service, operation), []).extend(where)
    fake_secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:key-x1"
    granted = {
        a
        for s in task_role(fake_secret).statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    # The control API's calls ship too (one app), but the container serves only streams:
    # its control routes answer 401 without API Gateway's authorizer claims.
    control_only = {"dynamodb:DeleteItem"}
    assert "elasticloadbalancing:DescribeTargetHealth" in in_code
    missing = set(in_code) - granted - control_only - set(LOCAL_ONLY)
    assert not missing, {a: in_code[a] for a in missing}


# --- knowing the target is leaving -----------------------------------------------------------


@pytest.mark.parametrize(
    ("states", "leaving_at"),
    [
        # Scale-in as the ELB docs describe it: draining for the deregistration delay.
        (["unused", "initial", "healthy", "healthy", "draining"], 4),
        # The deregistration completed between two polls (or an emulator skips draining).
        (["initial", "healthy", "unused"], 2),
        (["healthy", "unhealthy.draining"], 1),
        # A task still starting is "unused" (not registered yet), then absent, then initial.
        (["unused", None, "unused", "initial", "unhealthy", "healthy"], None),
    ],
)
def test_the_target_is_leaving_once_draining_or_gone_after_it_was_registered(
    states: list[str | None], leaving_at: int | None
) -> None:
    state = target.TargetState()
    answers = [state.leaving(s) for s in states]
    first = answers.index(True) if True in answers else None
    assert first == leaving_at


def test_the_task_finds_its_target_by_its_address_and_port() -> None:
    metadata = {"Networks": [{"NetworkMode": "awsvpc", "IPv4Addresses": ["10.0.1.15"]}]}
    assert target.address_of(metadata) == "10.0.1.15"
    with pytest.raises(ValueError, match="no IPv4 address"):
        target.address_of({"Networks": []})
    answer = {
        "TargetHealthDescriptions": [
            {"Target": {"Id": "10.0.1.16", "Port": 8000}, "TargetHealth": {"State": "draining"}},
            {"Target": {"Id": "10.0.1.15", "Port": 8001}, "TargetHealth": {"State": "draining"}},
            {"Target": {"Id": "10.0.1.15", "Port": 8000}, "TargetHealth": {"State": "healthy"}},
        ]
    }
    assert target.state_of(answer, "10.0.1.15", 8000) == "healthy"
    assert target.state_of(answer, "10.0.1.99", 8000) is None
