"""The hosted dashboard in template.yaml: one CloudFront origin for page, API and stream.

CloudFront is not emulated here, so its rules are written down and checked: which
behaviour a path reaches (first matching ``PathPattern`` in order, ``*`` any characters,
``?`` one, case-sensitive, the query string ignored: CloudFront Developer Guide, "Path
pattern"), which caching, compression, headers and timeouts each gets, and who may read the
page bucket and call the stream Function URL.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from functions.app.settings import AppSettings
from functions.app.web.middleware import dashboard_csp
from tests.test_template import GENERATED, TRANSLATED, _app_operations

MANAGED_CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
MANAGED_ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
TEMPLATE = TRANSLATED  # after the SAM transform, intrinsics in their long form
RESOURCES: dict[str, Any] = GENERATED
CONFIG: dict[str, Any] = RESOURCES["Distribution"]["Properties"]["DistributionConfig"]
ORIGINS = {origin["Id"]: origin for origin in CONFIG["Origins"]}


def _cloudfront_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    )


def behaviour_for(path: str) -> dict[str, Any]:
    """The cache behaviour CloudFront picks for ``path``: the first that matches, in the
    order listed, else the default."""
    bare = path.split("?", 1)[0]
    for behaviour in CONFIG["CacheBehaviors"]:
        if _cloudfront_pattern(behaviour["PathPattern"]).fullmatch(bare):
            return behaviour
    return CONFIG["DefaultCacheBehavior"]


def test_every_app_route_reaches_the_function_that_serves_it() -> None:
    operations = _app_operations()
    assert len(operations) >= 15
    for method, path in operations:
        behaviour = behaviour_for(path)
        # The app's own stream route, and only it, reaches the stream function. The seed's
        # POST stream carries a bearer JWT and a body: through an origin access control
        # CloudFront would replace the one and Lambda would want the other's hash, so its
        # clients call the Function URL directly (docs/operations.md).
        expected = (
            "stream" if path.endswith("/stream") and path.startswith("/api/replay/") else "api"
        )
        assert behaviour["TargetOriginId"] == expected, (method, path)
        assert method in behaviour["AllowedMethods"], (method, path)
    for page_path in ("/", "/index.html", "/static/app.js", "/static/config.js"):
        assert behaviour_for(page_path)["TargetOriginId"] == "page"
    assert behaviour_for("/api/replay/sessions/s-abc/stream?token=t")["TargetOriginId"] == "stream"
    # A session id that merely contains "stream" is not a stream.
    assert behaviour_for("/api/replay/sessions/s-stream/members")["TargetOriginId"] == "api"


def test_the_api_and_the_stream_are_never_cached_and_get_what_they_need() -> None:
    for path in ("/api/replay/sessions", "/api/replay/sessions/s-x/stream"):
        behaviour = behaviour_for(path)
        assert behaviour["CachePolicyId"] == MANAGED_CACHING_DISABLED
        # Authorization (the JWT authorizer's), Last-Event-ID, If-Match and the query
        # string (stream tokens) reach the origin; Host does not (the execute-api and
        # lambda-url hosts route by their own name). CloudFront refuses Authorization in a
        # custom origin request policy, so the managed one is the way.
        assert behaviour["OriginRequestPolicyId"] == MANAGED_ALL_VIEWER_EXCEPT_HOST
        assert behaviour["ViewerProtocolPolicy"] == "https-only"


def test_the_stream_is_not_compressed_and_outlives_its_heartbeat() -> None:
    behaviour = behaviour_for("/api/replay/sessions/s-x/stream")
    assert behaviour["Compress"] is False
    assert set(behaviour["AllowedMethods"]) == {"GET", "HEAD"}
    origin = ORIGINS["stream"]["CustomOriginConfig"]
    heartbeat_max = AppSettings.model_fields["stream_heartbeat_s"].metadata
    most = max(m.le for m in heartbeat_max if hasattr(m, "le"))
    assert origin["OriginReadTimeout"] > most
    assert origin["OriginKeepaliveTimeout"] > most
    assert origin["OriginReadTimeout"] <= 60  # more needs a quota increase
    assert origin["OriginProtocolPolicy"] == "https-only"


def test_the_stream_function_url_answers_only_the_distribution() -> None:
    assert RESOURCES["StreamFunctionUrl"]["Properties"]["AuthType"] == {"Ref": "StreamUrlAuth"}
    assert TEMPLATE["Parameters"]["StreamUrlAuth"]["Default"] == "AWS_IAM"
    oac = RESOURCES["StreamUrlAccess"]["Properties"]["OriginAccessControlConfig"]
    assert oac["OriginAccessControlOriginType"] == "lambda"
    assert oac["SigningBehavior"] == "always"
    assert ORIGINS["stream"]["OriginAccessControlId"] == {"Fn::GetAtt": ["StreamUrlAccess", "Id"]}
    # Both permissions, each limited to this distribution.
    permissions = [
        r["Properties"]
        for r in RESOURCES.values()
        if r["Type"] == "AWS::Lambda::Permission"
        and r["Properties"]["Principal"] == "cloudfront.amazonaws.com"
    ]
    assert {p["Action"] for p in permissions} == {
        "lambda:InvokeFunction",
        "lambda:InvokeFunctionUrl",
    }
    for permission in permissions:
        assert permission["FunctionName"] == {"Ref": "StreamFunction"}
        assert "${Distribution}" in permission["SourceArn"]["Fn::Sub"]


def test_the_page_bucket_is_private_and_read_only_by_the_distribution() -> None:
    bucket = RESOURCES["DashboardBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    statements = RESOURCES["DashboardBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert len(allows) == 1
    (allow,) = allows
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    assert "${Distribution}" in allow["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    deny = next(s for s in statements if s["Effect"] == "Deny")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    oac = RESOURCES["DashboardBucketAccess"]["Properties"]["OriginAccessControlConfig"]
    assert oac["OriginAccessControlOriginType"] == "s3"
    assert ORIGINS["page"]["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # OAC, not OAI


def test_browsers_get_https_http2_and_http3_and_the_page_is_compressed() -> None:
    assert CONFIG["HttpVersion"] == "http2and3"
    default = CONFIG["DefaultCacheBehavior"]
    assert default["ViewerProtocolPolicy"] == "redirect-to-https"
    assert default["Compress"] is True
    assert set(default["AllowedMethods"]) == {"GET", "HEAD"}
    assert CONFIG["DefaultRootObject"] == "index.html"


def test_every_answer_carries_the_security_headers_the_local_app_sends() -> None:
    policy = RESOURCES["DashboardSecurityHeaders"]["Properties"]["ResponseHeadersPolicyConfig"]
    headers = policy["SecurityHeadersConfig"]
    # One policy: the one the browser tests run the page under, with connections to any
    # https origin (the sign-in's token endpoint).
    assert headers["ContentSecurityPolicy"]["ContentSecurityPolicy"] == dashboard_csp(["https:"])
    assert "frame-ancestors 'none'" in headers["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    assert headers["ContentTypeOptions"]["Override"] is True
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == "no-referrer"  # tokens in stream URLs
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    for behaviour in [CONFIG["DefaultCacheBehavior"], *CONFIG["CacheBehaviors"]]:
        assert behaviour["ResponseHeadersPolicyId"] == {"Ref": "DashboardSecurityHeaders"}


def test_stream_urls_are_handed_out_on_the_page_origin() -> None:
    control = RESOURCES["ControlFunction"]["Properties"]["Environment"]["Variables"]
    # Relative (the page's own origin) unless the optional container path serves streams.
    assert control["STREAM_BASE_URL"] == {
        "Fn::If": ["WithContainer", {"Fn::Sub": "https://${ContainerDomainName}"}, ""]
    }


@pytest.mark.parametrize(
    "resource", ["DashboardBucketAccess", "StreamUrlAccess", "PageCachePolicy"]
)
def test_account_wide_names_are_unique_per_stack_and_short(resource: str) -> None:
    properties = GENERATED[resource]["Properties"]
    config = next(v for k, v in properties.items() if k.endswith("Config"))
    name = config["Name"]["Fn::Sub"]
    template, variables = name
    assert template.startswith("dr-${Id}-")
    assert variables["Id"] == {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}
    assert len(template.replace("${Id}", "x" * 36)) <= 64  # OAC names: at most 64


def test_a_custom_domain_needs_its_certificate() -> None:
    rule = TEMPLATE["Rules"]["DomainNeedsItsCertificate"]
    assert rule["Assertions"][0]["Assert"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "DashboardCertificateArn"}, ""]}]
    }
    assert CONFIG["Aliases"]["Fn::If"][0] == "HasDashboardDomain"
    outputs = TEMPLATE["Outputs"]
    assert {"DashboardUrl", "DashboardBucketName", "DistributionId"} <= set(outputs)
