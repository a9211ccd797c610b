"""The template as AWS applies it: SAM-translated, its IAM policies evaluated like IAM does.

``translate()`` runs samtranslator (the transform CloudFormation applies to template.yaml)
and resolves the intrinsics of the result against the names of a test deployment, so the
policies a function's role ends up with are plain JSON. ``Role`` evaluates them (Allow
statements, ``*``/``?`` patterns, StringLike/StringEquals conditions; a condition whose key
the request does not carry does not match, as in IAM).

``AwsEdge`` sits at the botocore edge of every client in the process while a function's
code runs: each API call is mapped to the IAM action, resource and condition keys AWS
authorises it with, recorded, and answered 403 AccessDenied when the role does not allow
it. It also applies the S3 rule moto ignores: a GET or HEAD of a missing key answers 404
only to a role allowed ``s3:ListBucket`` on the bucket without conditions, else 403.
"""

from __future__ import annotations

import fnmatch
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.client
from botocore.exceptions import ClientError
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).parent.parent
ACCOUNT, REGION, PARTITION = "123456789012", "us-east-1", "aws"
# Managed policies SAM attaches for logging and tracing (Tracing: Active): written to by the
# Lambda runtime and the X-Ray daemon, never by our boto3 clients.
RUNTIME_MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": (
        f"arn:{PARTITION}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    ),
    "AWSXrayWriteOnlyAccess": f"arn:{PARTITION}:iam::aws:policy/AWSXrayWriteOnlyAccess",
}


class _ManagedPolicies:
    """What samtranslator asks IAM for (the ARNs of managed policies named in the template)."""

    def load(self) -> dict[str, str]:
        return dict(RUNTIME_MANAGED_POLICIES)


def translated_template(parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """template.yaml after the SAM transform, intrinsics left in place.

    ``CodeUri`` is what ``sam package`` turns it into (an S3 URI), which the transform needs.
    """
    template = yaml_parse((ROOT / "template.yaml").read_text())
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://artifacts/function.zip"
    values = {"JwtIssuer": "https://issuer.example.com", "JwtAudience": ["dashboard"]}
    values.update(parameters or {})
    previous = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = REGION  # the transform fills AWS::Region from it
    try:
        translated: dict[str, Any] = transform(template, values, _ManagedPolicies())
    finally:
        if previous is None:
            os.environ.pop("AWS_DEFAULT_REGION")
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous
    return translated


@dataclass(frozen=True)
class Physical:
    """A deployed resource: what ``Ref`` and ``Fn::GetAtt ... Arn`` give."""

    ref: str
    arn: str


_SUB = re.compile(r"\$\{([^}!]+)\}")


def resolve(value: Any, physical: dict[str, Physical]) -> Any:
    """Intrinsics replaced by the deployed values in ``physical`` (and pseudo parameters)."""
    pseudo = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": PARTITION}

    def name(expression: str) -> str:
        if expression in pseudo:
            return pseudo[expression]
        logical, _, attribute = expression.partition(".")
        if attribute not in ("", "Arn"):
            raise KeyError(f"cannot resolve {expression}")
        resource = physical[logical]
        return resource.arn if attribute == "Arn" else resource.ref

    if isinstance(value, list):
        return [resolve(v, physical) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return name(value["Ref"])
    if set(value) == {"Fn::GetAtt"}:
        logical, attribute = value["Fn::GetAtt"]
        return name(f"{logical}.{attribute}")
    if set(value) == {"Fn::Sub"}:
        return _SUB.sub(lambda m: name(m.group(1)), value["Fn::Sub"])
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(resolve(parts, physical))
    return {k: resolve(v, physical) for k, v in value.items()}


@dataclass(frozen=True)
class Request:
    """One IAM authorisation: an action on a resource, with the request's condition keys."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        keys = "".join(f" [{k}={v}]" for k, v in self.context)
        return f"{self.action} on {self.resource}{keys}"


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(pattern: str, value: str) -> bool:
    # IAM wildcards: * any run of characters (also "/"), ? one character; case-sensitive.
    return fnmatch.fnmatchcase(value, pattern)


def _condition_holds(condition: dict[str, Any], context: tuple[tuple[str, str], ...]) -> bool:
    values: dict[str, list[str]] = {}
    for key, value in context:
        values.setdefault(key, []).append(value)
    for operator, tests in condition.items():
        qualifier, _, base = operator.rpartition(":")
        for key, expected in tests.items():
            actual = values.get(key)
            if qualifier == "ForAllValues":
                # IAM: true when the key is absent or every value matches a pattern.
                ok = all(_value_matches(base, v, expected) for v in actual or ())
            elif qualifier == "ForAnyValue":
                ok = any(_value_matches(base, v, expected) for v in actual or ())
            elif qualifier:
                raise NotImplementedError(f"condition qualifier {qualifier}")
            elif actual is None:
                return False  # no ...IfExists here: a missing key never matches
            else:
                ok = all(_value_matches(base, v, expected) for v in actual)
            if not ok:
                return False
    return True


def _value_matches(operator: str, actual: str, expected: Any) -> bool:
    if operator == "StringLike":
        return any(_matches(p, actual) for p in _listed(expected))
    if operator == "StringEquals":
        return actual in _listed(expected)
    raise NotImplementedError(f"condition operator {operator}")


# What Lambda itself does with a function's role: deliver a failed asynchronous invocation
# to the on-failure destination (AWS::Lambda::EventInvokeConfig).
DESTINATION_ACTIONS = {
    "sqs:SendMessage",
    "sns:Publish",
    "lambda:InvokeFunction",
    "events:PutEvents",
}


@dataclass
class Role:
    """A function's execution role: the statements attached to it, resolved.

    ``for_lambda``: the statements that let Lambda deliver to the function's destinations,
    which the function's own code never uses.
    """

    function: str
    statements: list[dict[str, Any]]
    managed: list[Any]
    for_lambda: list[dict[str, Any]] = field(default_factory=list)

    @property
    def for_code(self) -> list[dict[str, Any]]:
        return [s for s in self.statements if s not in self.for_lambda]

    def allowing(self, request: Request) -> list[dict[str, Any]]:
        """The statements that allow ``request`` (empty: denied)."""
        context = request.context
        found = []
        for statement in self.statements:
            if statement.get("Effect") != "Allow":
                continue
            actions = [a.lower() for a in _listed(statement["Action"])]
            if not any(_matches(a, request.action.lower()) for a in actions):
                continue
            if not any(_matches(r, request.resource) for r in _listed(statement["Resource"])):
                continue
            if _condition_holds(statement.get("Condition", {}), context):
                found.append(statement)
        return found

    def allows(self, request: Request) -> bool:
        return bool(self.allowing(request))


def roles(translated: dict[str, Any], physical: dict[str, Physical]) -> dict[str, Role]:
    """Each function's role: its inline policies and every policy resource attached to it."""
    resources = translated["Resources"]
    found: dict[str, Role] = {}
    for logical, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        role_id = resource["Properties"]["Role"]["Fn::GetAtt"][0]
        role = resources[role_id]["Properties"]
        documents = [p["PolicyDocument"] for p in role.get("Policies", [])]
        reference = {"Ref": role_id}
        for other in resources.values():
            properties = other.get("Properties", {})
            attached = (
                other["Type"] == "AWS::IAM::RolePolicy" and properties["RoleName"] == reference
            ) or (other["Type"] == "AWS::IAM::Policy" and reference in properties.get("Roles", []))
            if attached:
                documents.append(properties["PolicyDocument"])
        statements = [s for d in documents for s in _listed(resolve(d["Statement"], physical))]
        destinations = {
            resolve(destination["Destination"], physical)
            for other in resources.values()
            if other["Type"] == "AWS::Lambda::EventInvokeConfig"
            and other["Properties"]["FunctionName"] == {"Ref": logical}
            for destination in other["Properties"].get("DestinationConfig", {}).values()
        }
        for_lambda = [
            s
            for s in statements
            if set(_listed(s["Action"])) <= DESTINATION_ACTIONS
            and set(_listed(s["Resource"])) <= destinations
        ]
        found[logical] = Role(logical, statements, role.get("ManagedPolicyArns", []), for_lambda)
    return found


# --- botocore operations -> IAM authorisations ---------------------------------------------


def s3_object_arn(bucket: str, key: str) -> str:
    return f"arn:{PARTITION}:s3:::{bucket}/{key}"


# Operations whose IAM action is not "<service>:<OperationName>" (the Service
# Authorization Reference).
_ACTION_OF = {
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("lambda", "Invoke"): "lambda:InvokeFunction",
    ("elbv2", "DescribeTargetHealth"): "elasticloadbalancing:DescribeTargetHealth",
}
_PLAIN_SERVICES = {"s3", "dynamodb", "secretsmanager", "sqs"}


def iam_action(service: str, operation: str) -> str:
    """The IAM action that authorises ``service.operation``."""
    action = _ACTION_OF.get((service, operation))
    if action is None and service in _PLAIN_SERVICES:
        action = f"{service}:{operation}"
    if action is None:
        raise NotImplementedError(f"{service}.{operation}: which IAM action? (tests/iam.py)")
    return action


def iam_requests(
    service: str, operation: str, params: dict[str, Any], arns: Callable[[str, str], str]
) -> list[Request]:
    """What IAM authorises a call with: action, resource ARNs, condition keys.

    ``arns(kind, name)`` turns a table, function or secret name into its ARN.
    """
    action = iam_action(service, operation)
    if service == "s3":
        bucket = params["Bucket"]
        if action == "s3:ListBucket":
            prefix = params.get("Prefix")
            context = (("s3:prefix", prefix),) if prefix is not None else ()
            return [Request(action, f"arn:{PARTITION}:s3:::{bucket}", context)]
        return [Request(action, s3_object_arn(bucket, params["Key"]))]
    if service == "dynamodb":
        if operation in ("BatchGetItem", "BatchWriteItem"):
            tables = sorted(params["RequestItems"])
        elif operation in ("TransactGetItems", "TransactWriteItems"):
            tables = sorted(
                {next(iter(item.values()))["TableName"] for item in params["TransactItems"]}
            )
        else:
            tables = [params["TableName"]]
        context = tuple(("dynamodb:LeadingKeys", key) for key in leading_keys(params))
        return [Request(action, arns("table", t), context) for t in tables]
    if service == "lambda":
        return [Request(action, arns("function", params["FunctionName"]))]
    if service == "secretsmanager":
        return [Request(action, arns("secret", params["SecretId"]))]
    if action == "elasticloadbalancing:DescribeTargetHealth":
        return [Request(action, "*")]  # no resource-level permissions (Describe*)
    raise NotImplementedError(f"{service}.{operation}: which resource? (tests/iam.py)")


# The sessions table's partition key (template.yaml SessionsTable KeySchema).
TABLE_HASH_KEY = "session_id"


def leading_keys(params: dict[str, Any]) -> list[str]:
    """``dynamodb:LeadingKeys`` of an item request: the partition key values it touches."""
    items = [params.get("Key"), params.get("Item")]
    for table in params.get("RequestItems", {}).values():
        if isinstance(table, dict):  # BatchGetItem: {"Keys": [...]}
            items += table.get("Keys", [])
        else:  # BatchWriteItem: [{"PutRequest": {"Item"}} | {"DeleteRequest": {"Key"}}]
            for request in table:
                items += [request.get("PutRequest", {}).get("Item")]
                items += [request.get("DeleteRequest", {}).get("Key")]
    return [
        next(iter(item[TABLE_HASH_KEY].values()))
        for item in items
        if isinstance(item, dict) and TABLE_HASH_KEY in item
    ]


# --- the same, read from the source: every client call the shipped modules contain ----------

SCANNED_SERVICES = ("s3", "dynamodb", "lambda", "secretsmanager", "sqs", "elbv2")


def _operations_by_method() -> dict[str, list[tuple[str, str]]]:
    """boto3 method name (``get_object``) -> [(service, operation)] for the services."""
    from botocore import xform_name
    from botocore.session import get_session

    session = get_session()
    found: dict[str, list[tuple[str, str]]] = {}
    for service in SCANNED_SERVICES:
        for operation in session.get_service_model(service).operation_names:
            found.setdefault(xform_name(operation), []).append((service, operation))
    return found


def modules_loaded_by(import_name: str) -> list[str]:
    """Our modules (``chunker.*``, ``functions.*``) that importing ``import_name`` loads."""
    import subprocess
    import sys

    probe = (
        f"import sys, {import_name}; "
        "print(*sorted(m for m in sys.modules if m.split('.')[0] in ('chunker', 'functions')))"
    )
    env = {**os.environ, "REPLAY_BUCKET": "static-scan", "AWS_DEFAULT_REGION": REGION}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    return result.stdout.split()


def client_calls_in(modules: list[str]) -> dict[tuple[str, str], list[str]]:
    """(service, operation) -> where: every ``x.<boto3 method>(...)`` call in ``modules``,
    and every ``get_paginator("<method>")``. A method name several services share counts
    for each of them."""
    import ast

    by_method = _operations_by_method()
    found: dict[tuple[str, str], list[str]] = {}
    for module in modules:
        path = ROOT / module.replace(".", "/")
        source = (
            path.with_suffix(".py") if path.with_suffix(".py").exists() else path / "__init__.py"
        )
        for node in ast.walk(ast.parse(source.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            method = node.func.attr
            if method == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
                method = str(node.args[0].value)
            for service_operation in by_method.get(method, []):
                found.setdefault(service_operation, []).append(f"{module}:{node.lineno}")
    return found


def _denied(operation: str, message: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "AccessDenied", "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        },
        operation,
    )


@dataclass
class Call:
    """One API call the code made, and the authorisations it needed."""

    operation: str
    requests: list[Request]
    denied: list[Request] = field(default_factory=list)


class AwsEdge:
    """Every boto3 call in the process, authorised against one role while ``acting_as``."""

    def __init__(self, arns: Callable[[str, str], str]) -> None:
        self._arns = arns
        self._role: Role | None = None
        self._calls: list[Call] = []
        self._lock = threading.Lock()
        # Answers for calls whose effect the test does not need (e.g. an async invoke).
        self.answers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}

    @contextmanager
    def acting_as(self, role: Role) -> Iterator[list[Call]]:
        """Calls made by the code, as ``role``, until the block ends; yields them."""
        calls: list[Call] = []
        with self._lock:
            self._role, self._calls = role, calls
        try:
            yield calls
        finally:
            with self._lock:
                self._role = None

    def make_api_call(
        self,
        original: Callable[..., dict[str, Any]],
        client: Any,
        operation: str,
        params: dict[str, Any],
    ) -> dict[str, Any]:
        role = self._role
        if role is None:  # test set-up: not the function's code
            return original(client, operation, params)
        service = client.meta.service_model.service_name
        requests = iam_requests(service, operation, params, self._arns)
        call = Call(f"{service}.{operation}", requests)
        call.denied = [r for r in requests if not role.allows(r)]
        with self._lock:
            self._calls.append(call)
        if call.denied:
            raise _denied(operation, f"{role.function} is not allowed {call.denied[0]}")
        answer = self.answers.get(call.operation)
        if answer is not None:
            return answer(params)
        try:
            return original(client, operation, params)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            missing = code in ("NoSuchKey", "404", "NotFound")
            if service == "s3" and operation in ("GetObject", "HeadObject") and missing:
                bucket_arn = f"arn:{PARTITION}:s3:::{params['Bucket']}"
                if not role.allows(Request("s3:ListBucket", bucket_arn)):
                    if operation == "HeadObject":  # a HEAD's error has no body: code "403"
                        raise ClientError(
                            {
                                "Error": {"Code": "403", "Message": "Forbidden"},
                                "ResponseMetadata": {"HTTPStatusCode": 403},
                            },
                            operation,
                        ) from exc
                    raise _denied(operation, "Access Denied") from exc
            raise


@contextmanager
def aws_edge(arns: Callable[[str, str], str]) -> Iterator[AwsEdge]:
    """An ``AwsEdge`` in front of every botocore client while the block runs."""
    edge = AwsEdge(arns)
    original = botocore.client.BaseClient._make_api_call

    def patched(client: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return edge.make_api_call(original, client, operation, params)

    botocore.client.BaseClient._make_api_call = patched  # type: ignore[method-assign]
    try:
        yield edge
    finally:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]
