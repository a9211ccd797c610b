"""A small realistic day for turnaround, KPI, export and documentation tests: the synthetic
airport XLHI as ``make demo`` serves it, 08:00-11:00 local, with a smaller fleet and
programme, so vehicles run short and departures leave 10 min to 2 h late. Published on
the test bucket."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from chunker.batch.run import chunk_day
from chunker.format.keys import DayKeys
from synthetic import GeneratorSettings, generate_day
from tests.conftest import BUCKET
from tests.streaming import CONFIG, publish_objects

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SLICE = GeneratorSettings(vehicles=20, flights=80, start_hour=8, hours=3)
KEYS = DayKeys(SLICE.airport, SLICE.service_date.isoformat())


@cache
def slice_objects() -> dict[str, bytes]:
    """The slice's raw objects (generated once per process)."""
    return generate_day(SLICE).objects


def publish_slice(s3: S3Client) -> dict[str, bytes]:
    """The slice, uploaded to the empty test bucket and published."""
    return publish_objects(s3, ("synthetic", SLICE.model_dump_json()), slice_objects, KEYS.airport)


def publish_variant(s3: S3Client, variant: str = "nearest-first") -> dict[str, bytes]:
    """A second dispatch run of the slice (``variant``, by the nearest-first rule),
    uploaded beside the published slice and published."""
    settings = SLICE.model_copy(update={"variant": variant, "dispatch_rule": "nearest_first"})
    objects = generate_day(settings).objects
    for key, body in objects.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    chunk_day(s3, BUCKET, KEYS.airport, KEYS.service_date, CONFIG, variant=variant)
    return objects
