"""``dispatch-replay publish-dashboard``: put the dashboard on a deployed stack's origin.

The last step of ``make deploy``, after ``sam deploy``: read the stack's outputs, upload
the page's files to its private bucket with a ``config.js`` written from those outputs (the
sign-in's issuer and client id; API and stream on the page's own origin, so no URL), remove
files an older version left, and invalidate the distribution's cache. Nobody edits a file
by hand. docs/operations.md, "The hosted dashboard", says why this is a step after the
deploy rather than a custom resource inside it.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# No type stubs are pinned for these two clients: only this laptop-side step uses them.
CloudFormationClient = Any
CloudFrontClient = Any

DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "dashboard"
# The page and its settings are revalidated on every load (a deploy shows at once); the
# rest may be reused for five minutes (each deploy also invalidates them at the edge).
REVALIDATE = "no-cache"
SHORT_LIVED = "public, max-age=300"
CONFIG_KEY = "static/config.js"
SIGN_IN_SCOPES = "openid email profile"
REQUIRED_OUTPUTS = ("DashboardBucketName", "DistributionId", "DashboardUrl")


class PublishError(RuntimeError):
    """The stack cannot take the dashboard (missing, not deployed, or without outputs)."""


@dataclass(frozen=True)
class PageFile:
    """One object of the page's bucket."""

    key: str
    body: bytes
    content_type: str
    cache_control: str


def stack_outputs(cloudformation: CloudFormationClient, stack: str) -> dict[str, str]:
    """The deployed stack's outputs by key."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except cloudformation.exceptions.ClientError as exc:
        raise PublishError(f"stack {stack!r}: {exc.response['Error']['Message']}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    missing = [key for key in REQUIRED_OUTPUTS if key not in outputs]
    if missing:
        raise PublishError(
            f"stack {stack!r} has no output {', '.join(missing)}: deploy this template first"
        )
    return outputs


def sign_in(outputs: dict[str, str]) -> dict[str, str] | None:
    """The OpenID Connect client the page signs in with: the issuer and client id the
    HTTP API's JWT authorizer trusts (None: the stack names none)."""
    if not (outputs.get("SignInIssuer") and outputs.get("SignInClientId")):
        return None
    return {
        "issuer": outputs["SignInIssuer"],
        "clientId": outputs["SignInClientId"],
        "scopes": SIGN_IN_SCOPES,
    }


def render_config(outputs: dict[str, str]) -> bytes:
    """``config.js`` for the hosted page: the same origin for API and stream, and the
    sign-in the HTTP API's JWT authorizer trusts. No token ever goes in this file."""
    settings: dict[str, Any] = {"apiBase": ""}
    auth = sign_in(outputs)
    if auth is not None:
        settings["auth"] = auth
    text = (
        "// Written by `make deploy` (publish-dashboard) from the stack's outputs.\n"
        f"window.DISPATCH_REPLAY = {json.dumps(settings, indent=2)};\n"
    )
    return text.encode()


def page_files(outputs: dict[str, str], dashboard_dir: Path = DASHBOARD_DIR) -> list[PageFile]:
    """Every object the page needs, as the local app serves them: ``index.html`` at the
    root, the rest under ``static/``, ``config.js`` written for this stack."""
    files = [
        PageFile(
            "index.html",
            (dashboard_dir / "index.html").read_bytes(),
            "text/html; charset=utf-8",
            REVALIDATE,
        )
    ]
    for path in sorted(dashboard_dir.rglob("*")):
        if not path.is_file() or path.name == "index.html" or "__pycache__" in path.parts:
            continue
        key = "static/" + path.relative_to(dashboard_dir).as_posix()
        if key == CONFIG_KEY:
            continue
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith("javascript"):
            content_type += "; charset=utf-8"
        files.append(PageFile(key, path.read_bytes(), content_type, SHORT_LIVED))
    files.append(
        PageFile(CONFIG_KEY, render_config(outputs), "text/javascript; charset=utf-8", REVALIDATE)
    )
    return files


def publish(
    cloudformation: CloudFormationClient,
    s3: S3Client,
    cloudfront: CloudFrontClient,
    stack: str,
    dashboard_dir: Path = DASHBOARD_DIR,
) -> dict[str, Any]:
    """Upload the page to ``stack``'s bucket, drop what an older version left, invalidate."""
    outputs = stack_outputs(cloudformation, stack)
    bucket = outputs["DashboardBucketName"]
    files = page_files(outputs, dashboard_dir)
    for page_file in files:
        s3.put_object(
            Bucket=bucket,
            Key=page_file.key,
            Body=page_file.body,
            ContentType=page_file.content_type,
            CacheControl=page_file.cache_control,
        )
    wanted = {f.key for f in files}
    stale = [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for obj in page.get("Contents", [])
        if obj["Key"] not in wanted
    ]
    for first in range(0, len(stale), 1000):
        s3.delete_objects(
            Bucket=bucket,
            Delete={"Objects": [{"Key": k} for k in stale[first : first + 1000]], "Quiet": True},
        )
    invalidation = cloudfront.create_invalidation(
        DistributionId=outputs["DistributionId"],
        InvalidationBatch={
            "Paths": {"Quantity": 1, "Items": ["/*"]},
            "CallerReference": f"publish-dashboard-{time.time_ns()}",
        },
    )["Invalidation"]["Id"]
    return {
        "url": outputs["DashboardUrl"],
        "bucket": bucket,
        "uploaded": len(files),
        "removed": len(stale),
        "invalidation": invalidation,
        "sign_in": sign_in(outputs) is not None,
    }


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``publish-dashboard`` on the top-level parser."""
    command = sub.add_parser(
        "publish-dashboard",
        help="upload the dashboard to a deployed stack and invalidate its distribution",
    )
    command.add_argument("--stack", required=True, help="the CloudFormation stack's name")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """``dispatch-replay publish-dashboard``."""
    return publish(
        boto3.client("cloudformation"), boto3.client("s3"), boto3.client("cloudfront"), args.stack
    )
