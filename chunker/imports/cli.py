"""``dispatch-replay import-layout``: an OpenStreetMap extract + overlay -> reference.json.

Writes the reference (the raw contract's ``reference.json``) and a full import report
beside it; prints the summary (counts, duplicates, skipped entries by reason) as JSON.
Errors (missing file, not OSM, no usable stand, a bad overlay) are ``ValueError``s that
the top-level command turns into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from chunker.imports.osm_document import read_document
from chunker.imports.osm_layout import import_layout
from chunker.imports.overlay import read_overlay


def add_command(sub: Any) -> None:
    """Register ``import-layout`` on the top-level subparsers."""
    parser = sub.add_parser(
        "import-layout",
        help="OpenStreetMap extract (Overpass JSON or .osm XML) + overlay -> reference.json",
        description=(
            "Import an airport layout from OpenStreetMap: stands, taxiway/service-road graph, "
            "terminals, runways. The overlay (YAML or JSON) gives what OSM lacks: time zone, "
            "depots, fleet. See docs/data-format.md, 'Importing an OpenStreetMap layout'."
        ),
    )
    parser.add_argument("osm", type=Path, help="Overpass JSON or OSM XML file (.gz is fine)")
    parser.add_argument("--overlay", type=Path, required=True, help="overlay file (.yaml or .json)")
    parser.add_argument("--out", type=Path, required=True, help="where to write reference.json")
    parser.add_argument(
        "--report",
        type=Path,
        help="where to write the full import report (default: beside --out, .import-report.json)",
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Import, write the reference and the report; the summary for stdout."""
    overlay = read_overlay(args.overlay)
    document = read_document(args.osm)
    result = import_layout(document, overlay)
    out: Path = args.out
    report: Path = args.report or out.with_name(out.stem + ".import-report.json")
    try:
        out.write_text(result.reference.model_dump_json(indent=1), encoding="utf-8")
        report.write_text(
            json.dumps(result.full_report(), indent=1, ensure_ascii=False), encoding="utf-8"
        )
    except OSError as exc:
        raise ValueError(f"cannot write {exc.filename}: {exc.strerror}") from exc
    return {**result.summary(), "reference": str(out), "report": str(report)}
