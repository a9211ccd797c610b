"""The app's public URL shapes, defined once: the routes mount these prefixes, the control
API builds stream URLs from them, and the logs and response headers recognise them.

Paths are part of the public API (docs/api.md, docs/openapi.json, the dashboard, the legacy
client): changing one here changes it everywhere at once, which is the point, and the
OpenAPI test notices.
"""

from __future__ import annotations

import re

from functions.app.domain.sessions import SESSION_ID

API = "/api/replay"  # everything the dashboard calls
AIRPORTS = API + "/airports"  # published days and their history (history routes' prefix)
SESSIONS = API + "/sessions"  # the session resource (control routes' prefix)
STREAM_SUFFIX = "/stream"
STREAM = SESSIONS + "/{session_id}" + STREAM_SUFFIX  # GET: the EventSource stream
LEGACY = "/api/auto_dispatch/replay"  # the legacy client's routes' prefix
LEGACY_STREAM = LEGACY + STREAM_SUFFIX  # POST: creates a session and streams it
# Answers under these prefixes carry stream or share tokens (never cached).
TOKEN_PREFIXES = (SESSIONS, LEGACY + "/")

_SESSION_IN_PATH = re.compile(rf"^{re.escape(SESSIONS)}/({SESSION_ID})(?:/|$)")


def session_path(session_id: str) -> str:
    """The session resource's path (``Location`` of a created session)."""
    return f"{SESSIONS}/{session_id}"


def stream_path(session_id: str) -> str:
    """The path of the session's EventSource stream."""
    return STREAM.format(session_id=session_id)


def session_id_in(path: str) -> str | None:
    """The session id a request path names, if any (for log correlation)."""
    found = _SESSION_IN_PATH.match(path)
    return found.group(1) if found else None


def loggable(path: str) -> str:
    """``path`` without anything after ``/stream`` (a stream path carries nothing secret
    itself, but nothing after it is logged either, so a token could never be)."""
    return path.split(STREAM_SUFFIX, maxsplit=1)[0]
