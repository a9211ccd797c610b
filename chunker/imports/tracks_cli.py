"""``dispatch-replay import-tracks``: a CSV / GPX / OpenSky track export -> raw JSON Lines.

The output is the raw contract's ``positions`` kind, or with ``--kind aircraft`` its
``aircraft`` kind (one day file, ``.gz`` if the name says so): put it at
``raw/{airport}/{date}/{kind}.jsonl.gz`` and chunk the day as usual.
Progress goes to stderr, the summary (fixes, skipped lines and dropped values by reason)
to stdout as JSON. Bad arguments or an unreadable input are a ``TrackImportError`` (a
``ValueError``): one line on stderr, exit status 2. The output appears only when complete.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from chunker.format.records import ENTITY_ID_PATTERN, VehicleState
from chunker.imports.tracks import (
    ALTITUDE_UNITS,
    OPENSKY_CSV_COLUMNS,
    SPEED_UNITS,
    TIME_FORMATS,
    Columns,
    ImportTally,
    Options,
    Progress,
    TrackFix,
    TrackImportError,
    aircraft_line,
    json_documents,
    open_binary,
    position_line,
    read_csv,
    read_gpx,
    read_opensky_json,
    text_lines,
    zone,
)

FORMATS = ("csv", "gpx", "opensky-json", "opensky-csv")
_BY_SUFFIX = {".csv": "csv", ".gpx": "gpx", ".json": "opensky-json", ".jsonl": "opensky-json"}


def add_command(sub: Any) -> None:
    """Register ``import-tracks`` on the top-level subparsers."""
    parser = sub.add_parser(
        "import-tracks",
        help="CSV (column mapping) / GPX / OpenSky state vectors -> raw positions JSON Lines",
        description=(
            "Convert a track export into the raw positions contract. See docs/data-format.md, "
            "'Importing tracks'."
        ),
    )
    parser.add_argument("input", type=Path, help="the export (.gz is fine)")
    parser.add_argument("--out", type=Path, required=True, help="positions .jsonl or .jsonl.gz")
    parser.add_argument("--format", help=f"{' | '.join(FORMATS)} (default: by the input's suffix)")
    parser.add_argument(
        "--columns",
        help="CSV: field=column pairs, e.g. id=tracker,t=time,lat=lat,lon=lon,speed=gs "
        "(fields: id t lat lon heading speed on_ground altitude state callsign)",
    )
    parser.add_argument("--speed-unit", default="kmh", help="CSV speed: kmh | knots | ms | mph")
    parser.add_argument("--altitude-unit", default="m", help="CSV altitude: m | ft")
    parser.add_argument("--time-format", default="auto", help="CSV time: auto | s | ms | iso")
    parser.add_argument(
        "--assume-tz", help="IANA zone for ISO times without an offset (else they are skipped)"
    )
    parser.add_argument(
        "--vehicle-map", type=Path, help="JSON object: source id -> fleet vehicle id"
    )
    parser.add_argument("--vehicle", help="GPX: the fleet vehicle id of every point")
    parser.add_argument(
        "--kind",
        default="positions",
        help="positions (ground vehicles, the default) | aircraft (surface fixes of aircraft: "
        "the id is an icao24 or a registration)",
    )
    parser.add_argument(
        "--state",
        default=VehicleState.EN_ROUTE.value,
        help="vehicle state written where the input has none (default en_route)",
    )


def _choice(name: str, value: str, allowed: Any) -> str:
    if value not in allowed:
        raise TrackImportError(f"--{name} {value!r}: choose from {', '.join(allowed)}")
    return value


def _mapping(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        document = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise TrackImportError(f"cannot read {path}: {exc.strerror}") from exc
    except orjson.JSONDecodeError as exc:
        raise TrackImportError(f"{path}: not JSON ({exc})") from exc
    pattern = re.compile(ENTITY_ID_PATTERN)
    if not isinstance(document, dict) or not all(
        isinstance(v, str) and pattern.match(v) for v in document.values()
    ):
        raise TrackImportError(f"{path}: not an object of source id -> vehicle id")
    return {str(k): v for k, v in document.items()}


def run(args: argparse.Namespace, say: Any = None, clock: Any = time.monotonic) -> dict[str, Any]:
    """Import, write ``--out`` atomically; the summary for stdout."""
    source: Path = args.input
    fmt = args.format or _BY_SUFFIX.get(
        source.suffix.lower() if source.suffix.lower() != ".gz" else Path(source.stem).suffix
    )
    if fmt is None:
        raise TrackImportError(f"cannot tell the format of {source.name}: pass --format")
    _choice("format", fmt, FORMATS)
    line_of = {"positions": position_line, "aircraft": aircraft_line}[
        _choice("kind", args.kind, ("positions", "aircraft"))
    ]
    options = Options(
        speed_unit=_choice("speed-unit", args.speed_unit, SPEED_UNITS),
        altitude_unit=_choice("altitude-unit", args.altitude_unit, ALTITUDE_UNITS),
        time_format=_choice("time-format", args.time_format, TIME_FORMATS),
        assume_zone=zone(args.assume_tz),
        mapping=_mapping(args.vehicle_map),
        state=_choice("state", args.state, [s.value for s in VehicleState]),
    )
    if fmt == "csv" and not args.columns:
        raise TrackImportError("a CSV needs --columns (at least id=..,t=..,lat=..,lon=..)")
    columns = Columns.parse(args.columns) if args.columns else None
    stream, raw = open_binary(source)
    size = os.fstat(raw.fileno()).st_size
    tally = ImportTally()
    if say is None and not getattr(args, "quiet", False):

        def say(text: str) -> None:
            print(f"import-tracks: {text}", file=sys.stderr, flush=True)

    progress = Progress(size, say, clock)
    fixes: Iterator[TrackFix]
    if fmt == "gpx":
        fixes = read_gpx(stream, options, tally, args.vehicle)
    elif fmt == "opensky-json":
        fixes = read_opensky_json(json_documents(stream, tally), options, tally)
    else:
        chosen = OPENSKY_CSV_COLUMNS if fmt == "opensky-csv" and columns is None else columns
        assert chosen is not None
        csv_options = options
        if fmt == "opensky-csv":
            csv_options = Options(
                speed_unit="ms", time_format="s", mapping=options.mapping, state=options.state
            )
        fixes = read_csv(text_lines(stream), chosen, csv_options, tally)
    out: Path = args.out
    partial = out.with_name(out.name + ".partial")
    try:
        with partial.open("wb") as target:
            sink: Any = (
                gzip.GzipFile(fileobj=target, mode="wb", mtime=0) if out.suffix == ".gz" else target
            )
            try:
                for fix in fixes:
                    sink.write(line_of(fix) + b"\n")
                    tally.fixes += 1
                    tally.movers[fix.mover] += 1
                    progress.update(raw.tell(), tally)
            finally:
                if sink is not target:
                    sink.close()
        partial.replace(out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise TrackImportError(f"cannot write {out}: {exc.strerror}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        raw.close()
    progress.update(size, tally, final=True)
    return {"format": fmt, "kind": args.kind, "out": str(out), **tally.summary()}
