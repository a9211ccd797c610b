"""docs/api.md's shell examples, run as a reader would: in order, in one bash, with curl and
jq, against a live server on a published day. Every request must succeed (issue #17:
the page's ``If-Match: "3"`` example answered 409 when its commands were run in order)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import module_bucket
from tests.streaming import Server, serve
from tests.synthetic_slice import publish_slice, publish_variant

API_MD = Path(__file__).parent.parent / "docs" / "api.md"
DOC_ORIGIN = "http://127.0.0.1:8000"
# curl as the examples call it, but a 4xx/5xx answer fails the script (naming the call),
# unless the example documents that answer (EXPECT_STATUS, see ``expected_answers``).
STRICT_CURL = r"""
set -euo pipefail
# An example may pipe an answer into ``head``: the reader's shell has no pipefail, so the
# early close is not a failure here either (the status check below still runs).
trap '' PIPE
curl() {
    local answer status
    answer=$(command curl -sS -w '\n%{http_code}' "$@") || return 1
    status=${answer##*$'\n'}
    answer=${answer%$'\n'*}
    printf '%s\n' "$answer" 2>/dev/null || true
    if [ -n "${EXPECT_STATUS:-}" ]; then
        if [ "$status" != "$EXPECT_STATUS" ]; then
            printf 'HTTP %s (documented: %s) from: curl %s\n%s\n' \
                "$status" "$EXPECT_STATUS" "$*" "$answer" >&2
            return 1
        fi
    elif [ "$status" -ge 400 ]; then
        printf 'HTTP %s from: curl %s\n%s\n' "$status" "$*" "$answer" >&2
        return 1
    fi
}
"""
DOCUMENTED_ERROR = re.compile(r"^# ([45]\d\d)\b")


def shell_examples(markdown: str) -> list[str]:
    """Every ``sh`` block in document order, except the open-ended stream reads."""
    blocks = re.findall(r"^```sh\n(.*?)^```", markdown, flags=re.S | re.M)
    return [expected_answers(block) for block in blocks if "curl -sN" not in block]


def expected_answers(block: str) -> str:
    """An example that shows an error answer (a ``# 422 ...`` comment after its curl) must
    get exactly that answer: its curl runs with ``EXPECT_STATUS``."""
    lines = block.splitlines()
    for number, line in enumerate(lines):
        documented = DOCUMENTED_ERROR.match(line)
        if documented is None:
            continue
        command = max(i for i in range(number) if lines[i].lstrip().startswith("curl "))
        lines[command] = f"EXPECT_STATUS={documented.group(1)} {lines[command]}"
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with module_bucket() as s3:
        publish_slice(s3)
        publish_variant(s3)  # the variant examples (decision-quality ?compare=)
        yield from serve(s3)


def test_the_api_page_examples_run_in_order(server: Server, tmp_path: Path) -> None:
    examples = shell_examples(API_MD.read_text())
    assert len(examples) >= 7
    script = STRICT_CURL + "\n".join(examples).replace(DOC_ORIGIN, server.url)
    (tmp_path / "examples.sh").write_text(script)
    done = subprocess.run(
        ["bash", str(tmp_path / "examples.sh")],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # The If-Match example played the session at the version it had just read.
    session_id = re.search(r'"session_id": "(s-[^"]+)"', done.stdout)
    assert session_id is not None, done.stdout[:2000]
    session = server.services.sessions.get(session_id.group(1))
    assert session is not None and session.clock.state == "playing"
    assert session.last_command_id == "tab1-42"
