"""The published JSON Schemas (docs/schemas/) are exactly what the models say."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.local.cli import main

DOCS = Path(__file__).parent.parent / "docs" / "schemas"


def test_committed_schemas_are_current(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--out", str(tmp_path)]) == 0
    generated = sorted(p.name for p in tmp_path.iterdir())
    assert generated == sorted(p.name for p in DOCS.iterdir())
    for name in generated:
        assert (tmp_path / name).read_text() == (DOCS / name).read_text(), (
            f"docs/schemas/{name} is stale: run `dispatch-replay schema`"
        )
