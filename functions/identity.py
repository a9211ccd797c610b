"""Who is calling: the subject of a request, from the JWT authorizer or the local identity.

Behind API Gateway (HTTP API, payload 2.0) the JWT authorizer has verified the token and
put its claims in the event, which Mangum hands to the app as ``scope["aws.event"]``; the
subject is the ``sub`` claim. Locally (``AUTH_MODE=local``) the subject is the
``X-Replay-User`` header, or ``LOCAL_IDENTITY`` — for a laptop, never for a deployment.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, Request

from functions.problems import Problem
from functions.services import Services, get_services

SUBJECT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@._:|+-]{0,199}$")
LOCAL_USER_HEADER = "x-replay-user"


def jwt_subject(event: Any) -> str | None:
    """The ``sub`` claim the HTTP API JWT authorizer put in a payload 2.0 event."""
    try:
        claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    except (KeyError, TypeError):
        return None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    return subject if isinstance(subject, str) else None


def caller(request: Request, services: Annotated[Services, Depends(get_services)]) -> str:
    """FastAPI dependency: the calling subject, or 401."""
    settings = services.settings
    if settings.auth_mode == "jwt":
        subject = jwt_subject(request.scope.get("aws.event"))
    else:
        subject = request.headers.get(LOCAL_USER_HEADER) or settings.local_identity
    if not subject or not SUBJECT_PATTERN.match(subject):
        raise Problem(
            401, "unauthenticated", "Authentication required", "No valid caller identity."
        )
    return subject


Caller = Annotated[str, Depends(caller)]
