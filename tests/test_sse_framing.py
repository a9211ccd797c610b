"""Property tests of the SSE framing (functions/app/stream/sse.py) against an independent
parser that follows the WHATWG rules (tests/sse_client.py): whatever the payload and
however the bytes are split or cut, a client gets back exactly the events that were
framed, or a prefix of them, never a damaged one."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.app.stream import sse
from tests.sse_client import SSEParser

names = st.text(
    st.characters(blacklist_characters="\0\r\n:", blacklist_categories=("Cs",)), min_size=1
)
ids = st.one_of(
    st.none(),
    st.text(st.characters(blacklist_characters="\0\r\n", blacklist_categories=("Cs",))),
)
# Any text, line breaks of every kind included (JSON never has raw ones; the framing must
# still be right if a payload does).
payloads = st.text(st.characters(blacklist_categories=("Cs",)))
events = st.lists(st.tuples(names, payloads, ids), min_size=1, max_size=8)


def expected(data: str) -> str:
    """What a client reads back: every line break becomes LF."""
    return data.replace("\r\n", "\n").replace("\r", "\n")


def frame(items: list[tuple[str, str, str | None]]) -> bytes:
    return b"".join(sse.event(n, d.encode(), i) for n, d, i in items) + sse.comment("hb\nx")


@settings(max_examples=300, deadline=None)
@given(items=events, data=st.data())
def test_events_survive_any_split(
    items: list[tuple[str, str, str | None]], data: st.DataObject
) -> None:
    wire = frame(items)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=12)))
    parser = SSEParser()
    got = []
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        got += list(parser.feed(wire[start:end]))
    assert [(e.event, e.data) for e in got] == [(n, expected(d)) for n, d, _ in items]
    last_id = None
    for (_, _, event_id), event in zip(items, got, strict=True):
        last_id = event_id if event_id is not None else last_id
        assert event.id == last_id
    assert parser.comments == ["hb x"]


@settings(max_examples=300, deadline=None)
@given(items=events, data=st.data())
def test_a_cut_stream_yields_a_prefix_and_the_right_resume_id(
    items: list[tuple[str, str, str | None]], data: st.DataObject
) -> None:
    """A connection dropped at any byte: the client has the complete events before the
    cut, nothing of the one cut through, and its last event id is that of the last
    complete event (so a resume repeats and loses nothing)."""
    framed = [sse.event(n, d.encode(), i) for n, d, i in items]
    wire = b"".join(framed)
    cut = data.draw(st.integers(0, len(wire)))
    parser = SSEParser()
    got = list(parser.feed(wire[:cut]))
    complete = 0
    size = 0
    for piece in framed:
        if size + len(piece) > cut:
            break
        size += len(piece)
        complete += 1
    assert [(e.event, e.data) for e in got] == [(n, expected(d)) for n, d, _ in items[:complete]]
    known = [i for _, _, i in items[:complete] if i is not None]
    assert parser.last_event_id == (known[-1] if known else None)


@pytest.mark.parametrize("name", ["", "a\nb", "a:b", "a\rb", "a\0b"])
def test_bad_event_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        sse.event(name, b"{}")


@pytest.mark.parametrize("event_id", ["a\nb", "a\rb", "a\0b"])
def test_bad_ids_are_refused(event_id: str) -> None:
    with pytest.raises(ValueError):
        sse.event("snapshot", b"{}", event_id)


def test_retry_has_jitter_and_a_floor() -> None:
    values = {int(sse.retry(3000).split()[1]) for _ in range(50)}
    assert len(values) > 1 and all(1500 <= v <= 4500 for v in values)
    assert sse.retry(1) == b"retry: 100\n\n"
