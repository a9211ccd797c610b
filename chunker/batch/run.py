"""Chunk jobs: read a day's raw recordings from S3, build chunks, publish atomically.

A day is a sequence of independent *hour jobs*. An hour job owns every record whose time
falls in its hour: it validates them, writes the hour's chunks, its rejected records
(quarantine) and a *part* (summary) under the day's new version. The state at the start of
its hour comes either from the previous hour of the same run (``carry``) or, for an
independent job, from folding the earlier raw files. Both give the same bytes (tested).

When every part of a version exists, the manifest is written, then the pointer
``published/{airport}/{date}.json``: readers never see a half-written version, a failed
run leaves the last good version published, and re-running on the same input reproduces
the same version.

Ownership of rejected lines: a line of an hourly file belongs to that file's hour job; a
line of a day file whose record is valid belongs to its record's hour, and every other
rejected line of a day file (unparseable, outside the day) to hour 0.
"""

from __future__ import annotations

import datetime as dt
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

import orjson

from chunker.batch.aircraft import FlightLinks, StandFinder, aircraft_left
from chunker.batch.build import STATE_KIND, build_hour, build_hour_columns
from chunker.batch.columnar import Fleet, PositionColumns, parse_positions
from chunker.batch.raw_inputs import (
    InputError,
    RawDay,
    discover,
    get_bytes,
    iter_lines,
    line_blocks,
    load_reference,
    stream_object,
)
from chunker.batch.validate import (
    DUPLICATE,
    QUARANTINE_RAW_BYTES,
    Amended,
    Rules,
    TooManyRejects,
)
from chunker.format.day import InvalidServiceDay, ServiceDay
from chunker.format.encoding import (
    Catalogue,
    ChunkEntry,
    ChunkerConfig,
    Histogram,
    HourPart,
    KindCounts,
    Layout,
    Manifest,
    Pointer,
    Quarantine,
    ReferenceReport,
    dump_model,
    encode_chunk,
)
from chunker.format.keys import DEFAULT_VARIANT, DayKeys, RawFile
from chunker.format.records import RECORD_KINDS, Reference
from chunker.format.rows import Row
from chunker.format.s3 import object_exists
from chunker.format.state import ReplayState, annotate_decision, floor_tick

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PUT_THREADS = 8


@dataclass(slots=True)
class Rejected:
    """A raw line that was not accepted, and why."""

    key: str
    line: int
    kind: str
    reason: str
    detail: str
    raw: bytes
    t: int | None = None  # the record's time when it was valid (duplicates)

    def quarantine_line(self) -> bytes:
        """One JSON line of the quarantine object."""
        return orjson.dumps(
            {
                "object": self.key,
                "line": self.line,
                "kind": self.kind,
                "reason": self.reason,
                "detail": self.detail,
                "record": self.raw[:QUARANTINE_RAW_BYTES].decode("utf-8", "replace"),
            }
        )


@dataclass(slots=True)
class ParsedFile:
    """A raw file's accepted rows (file order, duplicates removed), its rejected lines, and
    the amendments made to accepted rows ((hour index, reason) -> count). A positions file
    read by the columnar path has its fixes in ``columns`` and no ``rows``."""

    rows: list[Row]
    rejects: list[Rejected]
    amended: Amended = field(default_factory=Counter)
    columns: PositionColumns | None = None

    def amended_in(self, hour: int) -> dict[str, int]:
        """Amendments of the rows in hour ``hour``, by reason."""
        return {reason: n for (h, reason), n in self.amended.items() if h == hour and n}


def parse_file(
    data: bytes | Iterable[bytes], raw_file: RawFile, rules: Rules, fleet: Fleet | None = None
) -> ParsedFile:
    """Validate every line of one raw object, given whole or in pieces as it is read.

    With ``fleet``, a positions file takes the columnar path (``chunker.batch.columnar``:
    the same fixes, rejects and amendments, as columns); without, the row path.
    """
    kind = raw_file.kind
    window = None if raw_file.hour is None else rules.day.hour_window(raw_file.hour)
    columns = None
    try:
        if kind == "positions" and fleet is not None:
            parsed = parse_positions(
                rules, line_blocks(data, raw_file.key, raw_file.gzip), window, fleet
            )
            rows: list[Row] = []
            columns, line_rejects, amended = parsed.columns, parsed.rejects, parsed.amended
        else:
            lines = iter_lines(data, raw_file.key, raw_file.gzip)
            rows, line_rejects, amended = rules.parse_lines(kind, lines, window)
    except TooManyRejects as exc:
        raise InputError(f"{raw_file.key}: {exc}; not a {kind} recording to chunk") from exc
    rejects = [
        Rejected(raw_file.key, number, kind, reason, detail, line, t)
        for number, reason, detail, line, t in line_rejects
    ]
    return ParsedFile(rows, rejects, amended, columns)


_TIME = itemgetter("t")


def by_time(rows: Iterable[Row]) -> list[Row]:
    """Rows sorted by time; ties keep their source order (the sort is stable)."""
    return sorted(rows, key=_TIME)


def annotated_decisions(
    decisions: list[Row], tasks: list[Row], origin: int, tick_ms: int
) -> list[Row]:
    """Decisions (sorted) annotated as ``build_hour`` annotates them, from the task rows
    (sorted): each with its task's latest row as of the end of the decision's tick."""
    latest: dict[str, Row] = {}
    out: list[Row] = []
    i = 0
    for decision in decisions:
        tick_end = floor_tick(decision["t"], origin, tick_ms) + tick_ms
        while i < len(tasks) and tasks[i]["t"] < tick_end:
            latest[tasks[i]["id"]] = tasks[i]
            i += 1
        out.append(annotate_decision(decision, latest.get(decision["id"])))
    return out


@dataclass(slots=True)
class HourOutcome:
    """What an hour job wrote, and the state at the end of its hour."""

    part: HourPart
    state: ReplayState
    seconds: float


@dataclass
class DayJob:
    """Everything an hour job of one (airport, service day, version) needs."""

    s3: S3Client
    bucket: str
    raw_day: RawDay
    reference: Reference
    config: ChunkerConfig
    reference_report: ReferenceReport = field(default_factory=ReferenceReport)
    # "columnar": positions take the columnar path (chunker.batch.columnar); "rows": the
    # row path, the reference it is tested against (same bytes).
    position_path: Literal["columnar", "rows"] = "columnar"
    day: ServiceDay = field(init=False)
    rules: Rules = field(init=False)
    fleet: Fleet | None = field(init=False)
    version: str = field(init=False)
    _parsed_day_files: dict[str, ParsedFile] = field(default_factory=dict, repr=False)
    _flight_links: FlightLinks | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        keys = self.raw_day.keys
        if self.reference.airport.airport_id != keys.airport:
            raise InputError(
                f"{keys.reference} describes airport {self.reference.airport.airport_id}, "
                f"not {keys.airport}"
            )
        try:
            self.day = ServiceDay.of(keys.service_date, self.reference.airport.timezone)
        except InvalidServiceDay as exc:
            raise InputError(f"{keys.reference}: {exc}") from exc
        self.rules = Rules.for_day(self.reference, self.day)
        self.fleet = Fleet.of(self.rules) if self.position_path == "columnar" else None
        self.version = self.raw_day.version(self.config)

    @classmethod
    def open(
        cls,
        s3: S3Client,
        bucket: str,
        airport: str,
        service_date: str,
        config: ChunkerConfig,
        position_path: Literal["columnar", "rows"] = "columnar",
        variant: str = DEFAULT_VARIANT,
    ) -> DayJob:
        """List the inputs of the day's ``variant`` and load its reference data."""
        keys = DayKeys(airport, service_date, variant)
        raw_day = discover(s3, bucket, keys)
        reference, report = load_reference(s3, bucket, keys)
        return cls(s3, bucket, raw_day, reference, config, report, position_path)

    @property
    def keys(self) -> DayKeys:
        return self.raw_day.keys

    # --- reading ---------------------------------------------------------------------------

    def _parse(self, raw_file: RawFile) -> ParsedFile:
        if raw_file.hour is None:
            cached = self._parsed_day_files.get(raw_file.key)
            if cached is not None:
                return cached
        body = stream_object(self.s3, self.bucket, raw_file.key)
        parsed = parse_file(body, raw_file, self.rules, self.fleet)
        if raw_file.kind == "aircraft":
            self.flight_links().link(parsed.rows, StandFinder(self.reference.stands))
        if raw_file.hour is None:
            self._parsed_day_files[raw_file.key] = parsed
        return parsed

    def flight_links(self) -> FlightLinks:
        """The day's flight legs, for linking aircraft fixes (``chunker.batch.aircraft``):
        from every flights file of the day, so each hour job links alike."""
        if self._flight_links is None:
            rows = [r for f in self.raw_day.files_of("flights") for r in self._parse(f).rows]
            self._flight_links = FlightLinks.of(rows)
        return self._flight_links

    def _owned(
        self, hour: int
    ) -> tuple[
        dict[str, list[Row]],
        PositionColumns | None,
        list[Rejected],
        dict[str, int],
        dict[str, Counter[str]],
    ]:
        """The hour's rows by kind (sorted; positions as columns on the columnar path), its
        rejected lines, duplicates by kind, and amendments by kind and reason."""
        start, end = self.day.hour_window(hour)
        rows: dict[str, list[Row]] = {}
        position_parts: list[PositionColumns] = []
        rejects: list[Rejected] = []
        amended: dict[str, Counter[str]] = {kind: Counter() for kind in RECORD_KINDS}
        for kind in RECORD_KINDS:
            kind_rows: list[Row] = []
            for raw_file in self.raw_day.files_of(kind):
                if raw_file.hour is not None and raw_file.hour != hour:
                    continue
                parsed = self._parse(raw_file)
                amended[kind].update(parsed.amended_in(hour))
                columns = parsed.columns
                if columns is not None:
                    in_hour = (start <= columns.t) & (columns.t < end)
                    position_parts.append(
                        columns if raw_file.hour is not None else columns.take(in_hour)
                    )
                if raw_file.hour is None:
                    kind_rows.extend(row for row in parsed.rows if start <= row["t"] < end)
                    rejects.extend(
                        r
                        for r in parsed.rejects
                        if (start <= r.t < end if r.t is not None else hour == 0)
                    )
                else:
                    kind_rows.extend(parsed.rows)
                    rejects.extend(parsed.rejects)
            rows[kind] = by_time(kind_rows)
        positions = None
        if self.fleet is not None:
            positions = PositionColumns.concat(self.fleet, position_parts).by_time()
        duplicates: dict[str, int] = {}
        for reject in rejects:
            if reject.reason == DUPLICATE:
                duplicates[reject.kind] = duplicates.get(reject.kind, 0) + 1
        return rows, positions, rejects, duplicates, amended

    def prior_state(self, hour: int) -> ReplayState:
        """State just before ``hour``, folded from earlier raw files only."""
        start, _ = self.day.hour_window(hour)
        state = ReplayState()
        earlier_tasks: list[Row] = []
        for kind, target in STATE_KIND.items():
            files = [f for f in self.raw_day.files_of(kind) if f.hour is None or f.hour < hour]
            if kind == "positions":
                # Only the last fix per vehicle matters: walk hourly files backwards and
                # stop once every vehicle of the fleet has been seen.
                missing = set(self.rules.vehicle_ids)
                for raw_file in reversed(files):
                    parsed = self._parse(raw_file)
                    latest: dict[str, Row] = {}
                    if parsed.columns is not None:
                        latest.update(parsed.columns.latest_rows(start))
                    for row in by_time(r for r in parsed.rows if r["t"] < start):
                        latest[row["id"]] = row
                    for vehicle_id in missing.intersection(latest):
                        state.vehicles[vehicle_id] = latest[vehicle_id]
                    missing.difference_update(latest)
                    if not missing:
                        break
                continue
            earlier: list[Row] = []
            for raw_file in files:
                earlier.extend(r for r in self._parse(raw_file).rows if r["t"] < start)
            if kind == "decisions":
                # The tasks' rows were folded above (STATE_KIND order): annotate from them.
                for row in annotated_decisions(
                    by_time(earlier), earlier_tasks, self.day.start_ms, self.config.tick_ms
                ):
                    state.apply(target, row)
                continue
            if kind == "aircraft":
                self._fold_aircraft(state, by_time(earlier))
                continue
            ordered = by_time(earlier)
            if kind == "tasks":
                earlier_tasks = ordered
            for row in ordered:
                state.apply(target, row)
        self._drop_aircraft_that_left(state, start)
        return state

    def _drop_aircraft_that_left(self, state: ReplayState, start: int) -> None:
        """Take off the aircraft that left by the hour's start, as the carried build's
        removal rows did (``aircraft_left`` as of the hour's last tick before ``start``:
        the rule is monotone, so where it removed them earlier does not matter)."""
        last_tick = start - self.config.tick_ms
        tick_of = self.day.start_ms, self.config.tick_ms
        for aircraft_id, fix in list(state.aircraft.items()):
            fix_tick = floor_tick(fix["t"], *tick_of)
            if aircraft_left(
                fix, last_tick, fix_tick, state.flights, self.config.aircraft_expiry_ms
            ):
                del state.aircraft[aircraft_id]

    def _fold_aircraft(self, state: ReplayState, rows: list[Row]) -> None:
        """Fold aircraft fixes (sorted) as ``build_hour`` does: tick by tick, the last fix
        per aircraft in each tick (where an aircraft parked is a derived fact)."""
        tick_ms, origin = self.config.tick_ms, self.day.start_ms
        tick: dict[str, Row] = {}
        tick_start = None
        for row in rows:
            start = floor_tick(row["t"], origin, tick_ms)
            if start != tick_start and tick:
                state.fold_tick(tick_start or 0, {}, (), (), (), aircraft=tick)
                tick = {}
            tick_start = start
            tick[row["id"]] = row
        if tick:
            state.fold_tick(tick_start or 0, {}, (), (), (), aircraft=tick)

    # --- writing ---------------------------------------------------------------------------

    def run_hour(self, hour: int, prior: ReplayState | None = None) -> HourOutcome:
        """Build, write and summarise one hour; ``prior`` is the state carried from ``hour-1``."""
        started = time.perf_counter()
        state = self.prior_state(hour) if prior is None else prior
        rows, positions, rejects, duplicates, amended = self._owned(hour)
        if positions is None:
            built = build_hour(self.keys.airport, self.day, hour, self.config, state, rows)
        else:
            built = build_hour_columns(
                self.keys.airport, self.day, hour, self.config, state, rows, positions
            )

        def put_chunk(start: int, document: dict[str, Any]) -> tuple[str, int]:
            key = self.keys.chunk(self.version, start)
            body = encode_chunk(document)
            self.s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/zstd"
            )
            return key, len(body)

        with ThreadPoolExecutor(PUT_THREADS) as pool:
            written = list(pool.map(lambda c: put_chunk(c.start, c.document), built.chunks))
        entries = [
            ChunkEntry(start=c.start, end=c.end, key=key, bytes=size, **c.counts)
            for c, (key, size) in zip(built.chunks, written, strict=True)
        ]
        quarantine_key = None
        if rejects:
            rejects.sort(key=lambda r: (r.key, r.line))
            quarantine_key = self.keys.quarantine(self.version, hour)
            # One line at a time: an orjson result can hold a 4-64 KiB buffer, so joining all
            # lines first would cost up to 64 KiB per rejected line.
            writer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip, mtime 0
            parts = [writer.compress(r.quarantine_line() + b"\n") for r in rejects]
            body = b"".join([*parts, writer.flush()])
            self.s3.put_object(
                Bucket=self.bucket,
                Key=quarantine_key,
                Body=body,
                ContentType="application/x-ndjson",
                ContentEncoding="gzip",
            )
        counts: dict[str, KindCounts] = {}
        for kind in RECORD_KINDS:
            rejected: dict[str, int] = {}
            for reject in rejects:
                if reject.kind == kind and reject.reason != DUPLICATE:
                    rejected[reject.reason] = rejected.get(reject.reason, 0) + 1
            accepted = len(rows[kind])
            if kind == "positions" and positions is not None:
                accepted += len(positions)
            counts[kind] = KindCounts(
                accepted=accepted,
                duplicates=duplicates.get(kind, 0),
                rejected=dict(sorted(rejected.items())),
                amended=dict(sorted(amended[kind].items())),
            )
        start, end = self.day.hour_window(hour)
        assert built.histogram is not None
        part = HourPart(
            hour=hour,
            start=start,
            end=end,
            chunks=entries,
            counts=counts,
            histogram=built.histogram,
            flights=[dict(state.flights[k]) for k in sorted(state.flights)],
            quarantine_key=quarantine_key,
            quarantined=len(rejects),
        )
        self.s3.put_object(
            Bucket=self.bucket,
            Key=self.keys.part(self.version, hour),
            Body=dump_model(part),
            ContentType="application/json",
        )
        return HourOutcome(part, state, time.perf_counter() - started)

    def run_hours(
        self, hours: Iterable[int], progress: Callable[[HourOutcome], None] | None = None
    ) -> ReplayState | None:
        """Run consecutive hours, carrying the state from one to the next."""
        state: ReplayState | None = None
        for hour in hours:
            outcome = self.run_hour(hour, state)
            state = outcome.state
            if progress is not None:
                progress(outcome)
        return state

    def parts(self) -> dict[int, HourPart]:
        """Parts written so far under this version."""
        prefix = self.keys.parts_prefix(self.version)
        found: dict[int, HourPart] = {}
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                part = HourPart.model_validate_json(get_bytes(self.s3, self.bucket, obj["Key"]))
                found[part.hour] = part
        return found

    def manifest(self, parts: dict[int, HourPart]) -> Manifest:
        """The manifest assembled from a complete set of parts."""
        ordered = [parts[h] for h in range(self.day.hours)]
        counts = {kind: KindCounts() for kind in RECORD_KINDS}
        by_reason: dict[str, int] = {}
        for part in ordered:
            for kind, kind_counts in part.counts.items():
                counts[kind] = counts[kind].add(kind_counts)
        for kind_counts in counts.values():
            for reason, n in kind_counts.rejected.items():
                by_reason[reason] = by_reason.get(reason, 0) + n
            if kind_counts.duplicates:
                by_reason["duplicate"] = by_reason.get("duplicate", 0) + kind_counts.duplicates
        histograms = [part.histogram for part in ordered]
        reference = self.reference
        return Manifest(
            airport=reference.airport,
            service_date=self.day.service_date,
            variant=self.keys.variant,
            version=self.version,
            start=self.day.start_ms,
            end=self.day.end_ms,
            config=self.config,
            chunks=[entry for part in ordered for entry in part.chunks],
            counts=counts,
            quarantine=Quarantine(
                total=sum(part.quarantined for part in ordered),
                by_reason=dict(sorted(by_reason.items())),
                objects=[p.quarantine_key for p in ordered if p.quarantine_key],
            ),
            reference_report=self.reference_report,
            histogram=Histogram(
                start=self.day.start_ms,
                bin_ms=self.config.histogram_bin_ms,
                task_events=[n for h in histograms for n in h.task_events],
                flight_events=[n for h in histograms for n in h.flight_events],
                notifications=[n for h in histograms for n in h.notifications],
                moving_vehicles=[n for h in histograms for n in h.moving_vehicles],
            ),
            catalogue=Catalogue(vehicles=reference.vehicles, flights=ordered[-1].flights),
            layout=Layout(
                stands=reference.stands,
                depots=reference.depots,
                terminals=reference.terminals,
                runways=reference.runways,
                road_nodes=reference.road_nodes,
                road_edges=reference.road_edges,
                attribution=reference.attribution,
            ),
            inputs=list(self.raw_day.inputs),
        )

    def is_built(self) -> bool:
        """Whether this version's manifest already exists.

        Asked by listing, not by HEAD: S3 answers a HEAD of a missing key with 404 only to a
        caller allowed ``s3:ListBucket`` without conditions, and 403 to this role, whose
        ListBucket is limited to prefixes (docs/operations.md, "IAM").
        """
        key = self.keys.manifest(self.version)
        return object_exists(self.s3, self.bucket, key)

    def finalize(self) -> Manifest | None:
        """Write the manifest and the pointer if every hour's part exists; else None."""
        parts = self.parts()
        if len(parts) < self.day.hours:
            return None
        manifest = self.manifest(parts)
        self.s3.put_object(
            Bucket=self.bucket,
            Key=self.keys.manifest(self.version),
            Body=dump_model(manifest),
            ContentType="application/json",
        )
        self.publish()
        return manifest

    def publish(self) -> Pointer:
        """Point the day's pointer at this version (its manifest must exist)."""
        pointer = Pointer(
            version=self.version,
            manifest_key=self.keys.manifest(self.version),
            published_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
        self.s3.put_object(
            Bucket=self.bucket,
            Key=self.keys.pointer,
            Body=dump_model(pointer),
            ContentType="application/json",
            CacheControl="no-cache",
        )
        return pointer


# --- entry points: the CLI and the Lambda handler call these ----------------------------


@dataclass(slots=True)
class DaySummary:
    """What a chunk run did, for the CLI and the job handler's result."""

    airport: str
    service_date: str
    version: str
    hours_built: list[int]
    published: bool
    already_published: bool
    counts: dict[str, KindCounts]
    quarantined: int
    chunk_objects: int
    chunk_bytes: int
    seconds: float
    reference_skipped: dict[str, int] = field(default_factory=dict)
    variant: str = DEFAULT_VARIANT

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "airport": self.airport,
            "service_date": self.service_date,
            "variant": self.variant,
            "version": self.version,
            "hours_built": self.hours_built,
            "published": self.published,
            "already_published": self.already_published,
            "counts": {k: v.model_dump() for k, v in self.counts.items()},
            "quarantined": self.quarantined,
            "chunk_objects": self.chunk_objects,
            "chunk_bytes": self.chunk_bytes,
            "seconds": round(self.seconds, 3),
            "reference_skipped": self.reference_skipped,
        }


def _summary(
    job: DayJob, parts: list[HourPart], published: bool, already: bool, started: float
) -> DaySummary:
    counts = {kind: KindCounts() for kind in RECORD_KINDS}
    for part in parts:
        for kind, kind_counts in part.counts.items():
            counts[kind] = counts[kind].add(kind_counts)
    return DaySummary(
        airport=job.keys.airport,
        service_date=job.keys.service_date,
        version=job.version,
        hours_built=sorted(p.hour for p in parts),
        published=published,
        already_published=already,
        counts=counts,
        quarantined=sum(p.quarantined for p in parts),
        chunk_objects=sum(len(p.chunks) for p in parts),
        chunk_bytes=sum(c.bytes for p in parts for c in p.chunks),
        seconds=time.perf_counter() - started,
        reference_skipped=dict(job.reference_report.skipped),
        variant=job.keys.variant,
    )


def split_hours(hours: int, jobs: int) -> list[range]:
    """``hours`` cut into ``jobs`` contiguous ranges of near-equal length."""
    jobs = max(1, min(jobs, hours))
    bounds = [round(i * hours / jobs) for i in range(jobs + 1)]
    return [range(bounds[i], bounds[i + 1]) for i in range(jobs)]


def chunk_day(
    s3: S3Client,
    bucket: str,
    airport: str,
    service_date: str,
    config: ChunkerConfig | None = None,
    *,
    force: bool = False,
    progress: Callable[[HourOutcome], None] | None = None,
    run_ranges: Callable[[DayJob, list[range]], list[HourPart]] | None = None,
    jobs: int = 1,
    position_path: Literal["columnar", "rows"] = "columnar",
    variant: str = DEFAULT_VARIANT,
) -> DaySummary:
    """Chunk and publish a whole service day.

    Hours run in ``jobs`` contiguous ranges; within a range the state is carried from hour
    to hour, and each range starts from state folded from the raw files. ``run_ranges``
    runs the ranges (e.g. in parallel processes); by default they run here, in order.
    If this version is already built, only the pointer is (re)written unless ``force``.
    ``position_path``: see ``DayJob`` (the row path is the columnar path's reference).
    """
    started = time.perf_counter()
    config = config or ChunkerConfig()
    job = DayJob.open(s3, bucket, airport, service_date, config, position_path, variant)
    if not force and job.is_built():
        job.publish()
        return _summary(job, [], True, True, started)
    ranges = split_hours(job.day.hours, jobs)
    if run_ranges is None:
        parts: list[HourPart] = []

        def collect(outcome: HourOutcome) -> None:
            parts.append(outcome.part)
            if progress is not None:
                progress(outcome)

        for hours in ranges:
            job.run_hours(hours, collect)
    else:
        parts = run_ranges(job, ranges)
    manifest = job.finalize()
    if manifest is None:
        raise InputError(f"{airport} {service_date}: not every hour was built; nothing published")
    return _summary(job, parts, True, False, started)


def chunk_hours(
    s3: S3Client,
    bucket: str,
    airport: str,
    service_date: str,
    hours: Iterable[int],
    config: ChunkerConfig | None = None,
    *,
    expected_version: str | None = None,
    variant: str = DEFAULT_VARIANT,
) -> DaySummary:
    """One fan-out job: build ``hours`` (consecutive), then publish if the day is complete.

    ``expected_version`` is the version the planner computed; if the inputs changed since,
    the job refuses to mix them into that version.
    """
    started = time.perf_counter()
    job = DayJob.open(s3, bucket, airport, service_date, config or ChunkerConfig(), variant=variant)
    if expected_version is not None and job.version != expected_version:
        raise InputError(
            f"{airport} {service_date}: inputs changed since planning "
            f"(version {job.version}, planned {expected_version})"
        )
    parts: list[HourPart] = []
    job.run_hours(sorted(hours), lambda o: parts.append(o.part))
    manifest = job.finalize()
    return _summary(job, parts, manifest is not None, False, started)


def plan_day(
    s3: S3Client,
    bucket: str,
    airport: str,
    service_date: str,
    config: ChunkerConfig | None = None,
    hours_per_job: int = 1,
    variant: str = DEFAULT_VARIANT,
) -> tuple[str, list[range], bool]:
    """(version, hour ranges for fan-out jobs, already built) for a day's ``variant``."""
    job = DayJob.open(s3, bucket, airport, service_date, config or ChunkerConfig(), variant=variant)
    jobs = -(-job.day.hours // max(1, hours_per_job))
    return job.version, split_hours(job.day.hours, jobs), job.is_built()
