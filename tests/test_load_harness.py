"""The load harness (``python -m bench load``) at a small scale, so that it cannot rot.

40 streams co-watching 4 sessions, 2 control actions per second, presence every 5 s, for
15 s against the real app on a moto server. Streams are limited to 6 s, so every viewer is
asked to reconnect and comes back with a fresh token and ``Last-Event-ID``. The same
criteria as the benchmark except memory flatness, and no timing bounds (the benchmark
judges gaps and lateness; here they only have to be measured).
"""

from __future__ import annotations

import pytest

from bench.bench_load import LoadConfig, run_load

pytestmark = pytest.mark.end_to_end


def test_load_harness_streams_controls_reconnects_and_leaves_nothing_behind() -> None:
    result = run_load(
        LoadConfig(
            streams=40,
            sessions=4,
            minutes=0.25,
            control_rate=2,
            presence_interval_s=5,
            pin=False,
            warm_cache=False,
            server_env={"STREAM_MAX_SECONDS": "6"},
        )
    )
    criteria = result["criteria"]
    streams = result["streams"]
    control = result["control"]

    # No errors: every (re)open 200, no error event or drop, every API request 2xx.
    assert criteria["no_errors"]["passed"], criteria["no_errors"]
    assert set(streams["opens"]) == {"200"}

    # Reconnects were asked for and answered: each viewer came back at least once.
    assert streams["reconnects"].get("duration_limit", 0) >= streams["viewers"]
    assert streams["opens"]["200"] >= 2 * streams["viewers"]

    # Every stream delivered frames; gaps and lateness were measured for all of them.
    assert criteria["no_stalls"]["streams_without_frames"] == 0
    assert len(streams["max_playing_gap_ms_per_stream"]) == streams["viewers"] == 40
    assert result["lateness"]["all"]["count"] > 0

    # Control went through the documented API, reached the streams, and presence renewed.
    assert control["ok"] > 0 and not criteria["no_errors"]["control_actions_failed"]
    assert control["to_stream"]["count"] > 0
    assert result["api_statuses"]["presence"].get("200", 0) > 0

    # Everything a stream started is gone once its client left.
    assert criteria["cleanup"]["passed"], criteria["cleanup"]["left_over"]
    after = criteria["cleanup"]["after"]
    assert after["open_streams"] == after["session_pollers"] == after["chunk_loads"] == 0
    assert after["asyncio_tasks"] <= criteria["cleanup"]["before"]["asyncio_tasks"]

    # The RSS series exists (its flatness is judged by the benchmark only).
    assert len(result["memory"]["rss_mb_series"]) >= 3
