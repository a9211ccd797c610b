"""The tests' published-day seeding (tests.streaming.restore_objects) writes into in-process
moto's backend directly; what the product then reads through boto3 must be exactly what
``put_object`` would have stored."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moto import mock_aws

from chunker.format.s3 import s3_client
from tests import streaming
from tests.conftest import BUCKET

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def read_back(s3: S3Client) -> dict[str, dict[str, Any]]:
    """Every object of the bucket as a reader sees it: body, the three headers, its ETag."""
    objects = {}
    for key in streaming._keys(s3):
        response = s3.get_object(Bucket=BUCKET, Key=key)
        objects[key] = {
            "body": response["Body"].read(),
            "etag": response["ETag"],
            **{name: response.get(name) for name in streaming._HEADERS},
        }
    return objects


def test_restored_objects_read_back_as_put_objects_do(s3: S3Client) -> None:
    streaming.publish_tiny_day(s3)  # the first call in a process chunks; this one may too
    stored = next(
        value[1] for key, value in streaming._PUBLISHED.items() if key[:2] == ("tiny", "XTST")
    )
    assert any("ContentEncoding" in a for a in stored) and any("CacheControl" in a for a in stored)
    with mock_aws():
        fast = s3_client()
        fast.create_bucket(Bucket=BUCKET)
        assert streaming._in_process_s3_backend(fast) is not None  # the fast path is taken
        streaming.restore_objects(fast, stored)
        restored = read_back(fast)
    with mock_aws():
        slow = s3_client()
        slow.create_bucket(Bucket=BUCKET)
        for arguments in stored:
            slow.put_object(**arguments)
        put = read_back(slow)
    assert len(restored) == len(stored) > 100
    assert restored == put
