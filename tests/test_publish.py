"""``dispatch-replay publish-dashboard`` (the last step of ``make deploy``) against moto:
a stack with the template's outputs, its page bucket and a distribution."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.local.cli import main
from functions.local.publish import DASHBOARD_DIR
from tests.test_hosting import TEMPLATE

ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Example"
CLIENT_ID = "dashboard-client-1234"


def _stack_template(bucket: str, distribution: str, with_sign_in: bool = True) -> str:
    outputs: dict[str, Any] = {
        "DashboardBucketName": {"Value": bucket},
        "DistributionId": {"Value": distribution},
        "DashboardUrl": {"Value": "https://d111111abcdef8.cloudfront.net"},
    }
    if with_sign_in:
        outputs["SignInIssuer"] = {"Value": ISSUER}
        outputs["SignInClientId"] = {"Value": CLIENT_ID}
    # Outputs the real template has, by the same keys (a test below checks the keys).
    return json.dumps(
        {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
            "Outputs": outputs,
        }
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(
            Bucket="page-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        cloudfront = boto3.client("cloudfront")
        distribution = cloudfront.create_distribution(
            DistributionConfig={
                "CallerReference": "test",
                "Comment": "",
                "Enabled": True,
                "Origins": {
                    "Quantity": 1,
                    "Items": [
                        {
                            "Id": "page",
                            "DomainName": "page-bucket.s3.eu-west-1.amazonaws.com",
                            "S3OriginConfig": {"OriginAccessIdentity": ""},
                        }
                    ],
                },
                "DefaultCacheBehavior": {
                    "TargetOriginId": "page",
                    "ViewerProtocolPolicy": "redirect-to-https",
                    "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
                },
            }
        )["Distribution"]["Id"]
        cloudformation = boto3.client("cloudformation")
        cloudformation.create_stack(
            StackName="replay", TemplateBody=_stack_template("page-bucket", distribution)
        )
        yield {"s3": s3, "cloudfront": cloudfront, "distribution": distribution}


def _objects(s3: Any) -> dict[str, dict[str, Any]]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="page-bucket").get("Contents", [])]
    return {k: s3.get_object(Bucket="page-bucket", Key=k) for k in keys}


def test_the_page_goes_up_as_the_local_app_serves_it_with_a_config_from_the_stack(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = aws["s3"]
    s3.put_object(Bucket="page-bucket", Key="static/old-version.js", Body=b"//")
    assert main(["publish-dashboard", "--stack", "replay"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["sign_in"] is True and result["removed"] == 1

    objects = _objects(s3)
    # Every file of the dashboard folder, by the path the page asks for, byte for byte.
    local = {
        (
            "index.html"
            if p.name == "index.html"
            else "static/" + p.relative_to(DASHBOARD_DIR).as_posix()
        )
        for p in DASHBOARD_DIR.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert set(objects) == local
    for key, obj in objects.items():
        if key != "static/config.js":
            source = DASHBOARD_DIR / (
                "index.html" if key == "index.html" else key.removeprefix("static/")
            )
            assert obj["Body"].read() == source.read_bytes(), key
    html = objects["index.html"]
    assert html["ContentType"] == "text/html; charset=utf-8"
    assert html["CacheControl"] == "no-cache"
    assert objects["static/app.js"]["ContentType"] == "text/javascript; charset=utf-8"
    assert objects["static/style.css"]["ContentType"] == "text/css; charset=utf-8"
    # The page's references resolve to uploaded keys.
    for src in re.findall(
        r'(?:src|href)="/(static/[^"]+)"', (DASHBOARD_DIR / "index.html").read_text()
    ):
        assert src in objects, src

    config = objects["static/config.js"]
    assert config["CacheControl"] == "no-cache"
    text = config["Body"].read().decode()
    settings = json.loads(re.search(r"window\.DISPATCH_REPLAY = (\{.*\});", text, re.S).group(1))  # type: ignore[union-attr]
    assert settings["apiBase"] == ""  # API and stream on the page's origin
    assert settings["auth"] == {
        "issuer": ISSUER,
        "clientId": CLIENT_ID,
        "scopes": "openid email profile",
    }
    assert "token" not in text.lower().replace("id_token", "")  # no credential in the file

    invalidations = aws["cloudfront"].list_invalidations(DistributionId=aws["distribution"])
    items = invalidations["InvalidationList"]["Items"]
    assert [i["Id"] for i in items] == [result["invalidation"]]


def test_a_missing_stack_is_one_line_and_a_failure(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["publish-dashboard", "--stack", "no-such-stack"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no-such-stack" in err
    assert _objects(aws["s3"]) == {}


def test_a_stack_without_the_hosting_outputs_is_refused(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    boto3.client("cloudformation").create_stack(
        StackName="old",
        TemplateBody=json.dumps(
            {
                "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {"ApiUrl": {"Value": "https://x.execute-api"}},
            }
        ),
    )
    assert main(["publish-dashboard", "--stack", "old"]) != 0
    err = capsys.readouterr().err
    assert "DashboardBucketName" in err and err.count("\n") == 1


def test_the_template_has_every_output_the_step_reads() -> None:
    outputs = TEMPLATE["Outputs"]
    assert {
        "DashboardBucketName",
        "DistributionId",
        "DashboardUrl",
        "SignInIssuer",
        "SignInClientId",
    } <= set(outputs)


def test_make_deploy_builds_deploys_then_publishes() -> None:
    """``make -n deploy``: the commands it would run, in order (the deploy itself needs AWS
    credentials)."""
    out = subprocess.run(
        ["make", "-n", "deploy", "STACK=replay-test"],
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    build = out.index("sam build")
    deploy = out.index("sam deploy")
    publish = out.index("publish-dashboard --stack replay-test")
    assert build < deploy < publish
    assert "--stack-name replay-test" in out
