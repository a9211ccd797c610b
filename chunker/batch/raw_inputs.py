"""Finding and reading one day's raw recordings in S3.

Raw objects are streamed: read from S3 in ``_READ``-byte pieces and inflated
incrementally with a cap on the inflated size, so neither a large object nor a corrupt
or hostile gzip file is ever held whole; the memory a file costs is its accepted rows,
whatever its size. Such a file is a clear error naming the object.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import compress
from typing import TYPE_CHECKING

import orjson
from botocore.exceptions import ClientError

from chunker.batch.reference import ReferenceUnusable, read_reference
from chunker.batch.validate import MAX_LINE_BYTES
from chunker.format.encoding import FORMAT_VERSION, ChunkerConfig, InputObject, ReferenceReport
from chunker.format.keys import DayKeys, RawFile, classify_raw_key
from chunker.format.records import Reference

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef

MAX_COMPRESSED_BYTES = 2 * 1024**3
MAX_INFLATED_BYTES = 8 * 1024**3
_PIECE = 1024 * 1024  # text handled at a time; its lines (up to ~15x for tiny ones) too
_FEED = 4096  # compressed bytes given to zlib at a time (see _inflate)
_READ = 1024 * 1024  # bytes read from S3 at a time
_BOM = b"\xef\xbb\xbf"


class InputError(Exception):
    """The day's input cannot be chunked; the message names the object and the cause."""


@dataclass(frozen=True, slots=True)
class RawDay:
    """One (airport, service day)'s raw objects, as listed at planning time."""

    keys: DayKeys
    reference_etag: str
    files: tuple[RawFile, ...]
    inputs: tuple[InputObject, ...]

    def files_of(self, kind: str) -> list[RawFile]:
        """Files of one kind, day files first, then hourly files by hour."""
        return sorted(
            (f for f in self.files if f.kind == kind),
            key=lambda f: (-1 if f.hour is None else f.hour, f.key),
        )

    def version(self, config: ChunkerConfig) -> str:
        """Content-derived version: same inputs and config -> same version."""
        digest = hashlib.sha256()
        digest.update(f"format={FORMAT_VERSION};".encode())
        digest.update(orjson.dumps(config.model_dump(), option=orjson.OPT_SORT_KEYS))
        for obj in self.inputs:
            digest.update(f"\n{obj.key}\t{obj.etag}\t{obj.size}".encode())
        return digest.hexdigest()[:16]


def discover(s3: S3Client, bucket: str, keys: DayKeys) -> RawDay:
    """List the day's raw objects; fails clearly when there is nothing to chunk."""
    files: list[RawFile] = []
    inputs: list[InputObject] = []
    reference_etag = ""
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=keys.raw_prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key == keys.reference:
                reference_etag = obj["ETag"]
            else:
                raw_file = classify_raw_key(keys, key)
                if raw_file is None:
                    continue
                files.append(raw_file)
            inputs.append(InputObject(key=key, etag=obj["ETag"].strip('"'), size=obj["Size"]))
    if not reference_etag:
        raise InputError(f"s3://{bucket}/{keys.reference} is missing (reference data)")
    if not files:
        raise InputError(f"no raw recordings under s3://{bucket}/{keys.raw_prefix}")
    for kind in {f.kind for f in files}:
        layouts = {f.hour is None for f in files if f.kind == kind}
        if len(layouts) > 1:
            raise InputError(
                f"{kind}: both a day file and hourly files under {keys.raw_prefix}; use one layout"
            )
    inputs.sort(key=lambda o: o.key)
    files.sort(key=lambda f: f.key)
    return RawDay(keys, reference_etag, tuple(files), tuple(inputs))


def _open(s3: S3Client, bucket: str, key: str, limit: int) -> GetObjectOutputTypeDef:
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404"):
            raise InputError(f"s3://{bucket}/{key} is missing") from exc
        raise InputError(f"s3://{bucket}/{key}: {code or exc}") from exc
    if response["ContentLength"] > limit:
        response["Body"].close()
        raise InputError(f"s3://{bucket}/{key} is {response['ContentLength']} bytes (> {limit})")
    return response


def get_bytes(s3: S3Client, bucket: str, key: str, limit: int = MAX_COMPRESSED_BYTES) -> bytes:
    """Whole object body; InputError naming the object if it is missing or too large."""
    body: bytes = _open(s3, bucket, key, limit)["Body"].read()
    return body


def stream_object(
    s3: S3Client, bucket: str, key: str, limit: int = MAX_COMPRESSED_BYTES
) -> Iterator[bytes]:
    """The object body in pieces of up to ``_READ`` bytes, never held whole; InputError
    naming the object if it is missing or too large (checked before the first piece)."""
    body = _open(s3, bucket, key, limit)["Body"]

    def pieces() -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(_READ)
        finally:
            body.close()

    return pieces()


def load_reference(s3: S3Client, bucket: str, keys: DayKeys) -> tuple[Reference, ReferenceReport]:
    """The day's usable reference data and what was skipped of it (``read_reference``)."""
    data = get_bytes(s3, bucket, keys.reference, limit=64 * 1024 * 1024)
    try:
        return read_reference(data)
    except ReferenceUnusable as exc:
        raise InputError(
            f"s3://{bucket}/{keys.reference} is not usable reference data: {exc}"
        ) from exc


def iter_lines(data: bytes | Iterable[bytes], name: str, gzip: bool) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line) of every non-blank line of ``data`` (the object's bytes,
    or its bytes in pieces as they arrive), inflating gzip incrementally.

    A line longer than ``MAX_LINE_BYTES`` is cut to ``MAX_LINE_BYTES + 1`` bytes (enough
    for the validator to reject it as too long) so memory stays bounded.
    """
    for numbers, lines in line_blocks(data, name, gzip):
        yield from zip(numbers, lines, strict=True)


def line_blocks(
    data: bytes | Iterable[bytes], name: str, gzip: bool
) -> Iterator[tuple[Sequence[int], list[bytes]]]:
    """``iter_lines`` a block of text at a time: (line numbers, lines) of its non-blank
    lines, for readers that handle lines in bulk (``chunker.batch.columnar``)."""
    chunks = _slices(data) if isinstance(data, bytes) else iter(data)
    pieces = _inflate(chunks, name) if gzip else chunks
    number = 0
    for block in _line_blocks(_without_bom(pieces)):
        # Blank lines are skipped in C, without a Python step per line: a gzip of a GiB of
        # newlines is read at memory speed.
        if block.isspace():
            number += block.count(b"\n") + 1
            continue
        lines = block.split(b"\n")
        stripped = list(map(bytes.strip, lines))
        if all(stripped):
            yield range(number + 1, number + 1 + len(lines)), lines
        else:
            numbers = range(number + 1, number + 1 + len(lines))
            yield list(compress(numbers, stripped)), list(compress(lines, stripped))
        number += len(lines)


def _without_bom(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """The text without a leading UTF-8 byte order mark (RFC 8259 lets parsers ignore it;
    Windows tools write one), which would otherwise make the first line invalid JSON."""
    head = b""
    for piece in pieces:
        head += piece
        if len(head) >= len(_BOM):
            break
    if head.startswith(_BOM):
        head = head[len(_BOM) :]
    if head:
        yield head
    yield from pieces


def _slices(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), _PIECE):
        yield data[start : start + _PIECE]


def _inflate(chunks: Iterator[bytes], name: str) -> Iterator[bytes]:
    # zlib copies the input it has not used yet (``unconsumed_tail``, ``unused_data``) after
    # every call; feeding it ``_FEED`` bytes at a time keeps those copies small, so neither a
    # high ratio nor many concatenated members make inflating quadratic in the object size.
    inflater = zlib.decompressobj(wbits=31)
    inflated = 0
    started = False  # the current member has been given input
    empty = True
    for chunk in chunks:
        empty = empty and not chunk
        view = memoryview(chunk)
        for start in range(0, len(view), _FEED):
            rest: bytes | memoryview = view[start : start + _FEED]
            while rest:
                started = True
                try:
                    piece = inflater.decompress(rest, _PIECE)
                except zlib.error as exc:
                    raise InputError(f"{name}: not a readable gzip stream ({exc})") from exc
                inflated += len(piece)
                if inflated > MAX_INFLATED_BYTES:
                    raise InputError(f"{name}: inflates beyond {MAX_INFLATED_BYTES} bytes")
                if piece:
                    yield piece
                if inflater.eof:
                    # Concatenated gzip members are valid gzip: go on with the next member.
                    rest = inflater.unused_data
                    inflater = zlib.decompressobj(wbits=31)
                    started = False
                else:
                    rest = inflater.unconsumed_tail
    if empty:
        raise InputError(f"{name}: truncated gzip stream (empty)")
    while started and not inflater.eof:  # output the last call held back (its max_length)
        piece = inflater.decompress(b"", _PIECE)
        inflated += len(piece)
        if inflated > MAX_INFLATED_BYTES:
            raise InputError(f"{name}: inflates beyond {MAX_INFLATED_BYTES} bytes")
        if not piece:
            raise InputError(f"{name}: truncated gzip stream")
        yield piece


def _line_blocks(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """Re-cut pieces of text into blocks that end at line boundaries.

    Only the carried-over tail can grow across pieces; it is capped, so no line held in
    memory is longer than one piece plus ``MAX_LINE_BYTES``.
    """
    cap = MAX_LINE_BYTES + 1
    tail = b""
    for piece in pieces:
        cut = piece.rfind(b"\n")
        if cut < 0:
            if len(tail) < cap:
                tail = (tail + piece)[:cap]
            continue
        head = tail + piece[:cut]
        tail = piece[cut + 1 :][:cap]
        yield head
    yield tail
