"""``dispatch-replay demo --cache DIR``: keep a generated and chunked day between runs.

Generating and chunking the sample day is most of the demo's start-up (15-30 s on two
cores); a run with the same inputs and the same code gives the same bytes (chunking is
deterministic: tests/test_chunker.py). So a run with ``--cache`` stores every object the
bucket held once the day was published, and a later run whose key matches uploads them
into the fresh moto server instead of generating and chunking again.

The key covers everything that decides those bytes: the generator's settings, the chunker
configuration, and the source of the packages that produce them (``synthetic``, ``chunker``)
— edit any of their files and the cache misses, so a cached day is never older than the
code. An entry is written to a temporary folder and renamed into place, so concurrent runs
(parallel test workers) never read a half-written entry; the first to finish wins.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import chunker
import synthetic
from chunker.format.keys import PUBLISHED_PREFIX

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CACHE_FORMAT = 1
# Object metadata the chunker sets and readers rely on (chunks are zstd, manifests JSON).
HEADERS = ("ContentType", "ContentEncoding", "CacheControl")


def source_digest(packages: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for root in packages:
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root.parent)).encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


def cache_key(inputs: dict[str, Any]) -> str:
    """The entry name for these inputs (JSON-serialisable) under today's code."""
    code = source_digest(Path(str(p.__file__)).parent for p in (chunker, synthetic))
    blob = json.dumps({"format": CACHE_FORMAT, "inputs": inputs, "code": code}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class CachedDay:
    """An entry: where its objects are, and the summary the run that stored it reported."""

    folder: Path
    summary: dict[str, Any]

    @property
    def objects(self) -> int:
        return len(json.loads((self.folder / "index.json").read_text()))


def load(cache_dir: Path, key: str) -> CachedDay | None:
    """The entry for ``key``, if a complete one exists."""
    folder = cache_dir / key
    try:
        summary = json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return CachedDay(folder, summary)


def restore(entry: CachedDay, s3: S3Client, bucket: str, parallel: int = 8) -> int:
    """Upload every stored object into ``bucket``; returns how many.

    A day is ~1,500 small objects (a chunk per minute of the whole day, whatever hours
    were generated): the puts go out ``parallel`` at a time, as the chunker's own do. The
    published pointer goes last, as the chunker writes it, so a reader never sees a day
    whose chunks are not all there."""
    index: list[dict[str, str]] = json.loads((entry.folder / "index.json").read_text())

    def put(number: int) -> None:
        item = index[number]
        body = (entry.folder / "objects" / str(number)).read_bytes()
        headers = {name: item[name] for name in HEADERS if item.get(name)}
        s3.put_object(Bucket=bucket, Key=item["Key"], Body=body, **headers)  # type: ignore[arg-type]

    pointers = [n for n, item in enumerate(index) if item["Key"].startswith(PUBLISHED_PREFIX)]
    others = sorted(set(range(len(index))) - set(pointers))
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(put, others))
    for number in pointers:
        put(number)
    return len(index)


def store(cache_dir: Path, key: str, s3: S3Client, bucket: str, summary: dict[str, Any]) -> None:
    """Save every object of ``bucket`` (the published day) under ``key``."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache_dir))
    try:
        (building / "objects").mkdir()
        index: list[dict[str, str]] = []
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for page in pages:
            for listed in page.get("Contents", []):
                response = s3.get_object(Bucket=bucket, Key=listed["Key"])
                (building / "objects" / str(len(index))).write_bytes(response["Body"].read())
                item = {"Key": listed["Key"]}
                item |= {name: str(response[name]) for name in HEADERS if response.get(name)}  # type: ignore[literal-required]
                index.append(item)
        (building / "index.json").write_text(json.dumps(index))
        (building / "summary.json").write_text(json.dumps(summary))  # last: marks it complete
        try:
            os.rename(building, cache_dir / key)
        except OSError:  # another run stored the same entry first: theirs is as good
            return
    finally:
        shutil.rmtree(building, ignore_errors=True)
