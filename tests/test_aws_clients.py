"""chunker.format.clients: every AWS client from one botocore session whose model loader decodes
with orjson. What it decodes must be what botocore's own loader decodes, for every model
file of every service the functions ship (lambda_build.py prunes the rest)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import OrderedDict
from typing import Any

import botocore.loaders
import pytest
from moto import mock_aws

from chunker.format import clients
from chunker.format.clients import OrjsonFileLoader, aws_client
from lambda_build import CREDENTIAL_SERVICES

# The services the shipped code makes clients of (tests/test_artifact.py checks each
# folder's models against its role), and the ones botocore may use for credentials.
SERVICES = ("dynamodb", "s3", "secretsmanager", "lambda", *CREDENTIAL_SERVICES)
TOP_LEVEL = ("endpoints", "partitions", "sdk-default-configuration", "_retry")


def plain(value: Any) -> Any:
    """OrderedDicts as dicts (botocore's loader returns them; ours plain dicts), order kept
    as a list of pairs, so equality also compares the order of keys."""
    if isinstance(value, dict):
        return [(key, plain(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def test_the_orjson_loader_decodes_every_shipped_model_as_botocore_does() -> None:
    ours = botocore.loaders.Loader(file_loader=OrjsonFileLoader())
    theirs = botocore.loaders.Loader()
    compared = 0
    for name in TOP_LEVEL:
        assert plain(ours.load_data(name)) == plain(theirs.load_data(name)), name
        compared += 1
    for service in SERVICES:
        for type_name in ("service-2", "endpoint-rule-set-1", "paginators-1", "waiters-2"):
            try:
                expected = theirs.load_service_model(service, type_name)
            except botocore.exceptions.DataNotFoundError:
                continue
            assert plain(ours.load_service_model(service, type_name)) == plain(expected), (
                service,
                type_name,
            )
            compared += 1
    assert compared > 20


def test_what_orjson_refuses_is_decoded_by_botocores_json(tmp_path: Any) -> None:
    # orjson refuses NaN (json takes it); it would read an integer beyond 64 bits as a
    # float instead, which is why every shipped model is compared above.
    odd = tmp_path / "odd.json"
    odd.write_text('{"max": NaN, "b": [1.5]}')
    decoded = OrjsonFileLoader().load_file(str(tmp_path / "odd"))
    assert isinstance(decoded, OrderedDict) and list(decoded) == ["max", "b"]
    assert decoded["max"] != decoded["max"] and decoded["b"] == [1.5]


def test_clients_come_from_one_botocore_session_which_moto_still_intercepts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3 = aws_client("s3")
        dynamodb = aws_client("dynamodb")
        session = clients._default_session()
        loader = session.get_component("data_loader")
        assert isinstance(loader.file_loader, OrjsonFileLoader)
        s3.create_bucket(Bucket="clients-test")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["clients-test"]
        assert dynamodb.list_tables()["TableNames"] == []
    with mock_aws():  # a fresh mock: the same session, and its clients see the new mock
        assert aws_client("s3").list_buckets()["Buckets"] == []
        assert clients._default_session() is session


def test_making_clients_imports_no_boto3() -> None:
    """What the Lambda folders leave out (lambda_build.py): making and using a client
    must not need boto3 or its S3 transfer manager."""
    probe = (
        "import sys\n"
        "from chunker.format.clients import aws_client\n"
        "for service in ('s3', 'dynamodb', 'secretsmanager', 'lambda'):\n"
        "    aws_client(service)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 's3transfer')))\n"
    )
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == "[]"
