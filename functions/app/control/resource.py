"""What the session routes share with the legacy client's routes, declaring none itself:
the session operations as a FastAPI dependency, the errors every session route documents
and the session view a route answers with.

A module without routes so that the stream function's app (``APP_ROUTES=stream``), whose
legacy POST stream creates a session, imports it without declaring the control API's
routes (each declaration costs its share of a cold start: ``functions.app.application``).
"""

from typing import Annotated

from fastapi import Depends

from functions.app.control.actions import SessionService
from functions.app.control.schema import SessionView
from functions.app.dependencies import Services, get_services
from functions.app.domain.sessions import Session
from functions.app.web.problems import documented

ERRORS = documented(
    e400="Malformed JSON; a `variant` or `compare` that is not a variant name.",
    e401="No caller identity.",
    e404="No such session (or not yours), or nothing published.",
    e413="Body over the size limit.",
    e422="Invalid values (types, range, speed, seek target).",
)


def session_service(services: Annotated[Services, Depends(get_services)]) -> SessionService:
    """FastAPI dependency: the session operations over the app's services."""
    return SessionService(services)


Sessions = Annotated[SessionService, Depends(session_service)]


async def view(service: SessionService, caller: str, session: Session) -> SessionView:
    """The session as ``caller`` sees it, with a fresh stream token."""
    return SessionView.of(
        session, caller, service.services.now_ms(), service.stream_access(caller, session)
    )
