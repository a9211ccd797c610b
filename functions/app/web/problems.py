"""RFC 9457 problem details: every 4xx/5xx of the HTTP API is ``application/problem+json``.

Domain code raises domain exceptions (``functions.app.domain.errors.DomainError``: each
carries its slug, status and title); the app translates them once, at the edge, into a
``Problem`` (``Problem.of``). ``Problem`` itself is raised only by HTTP-level code (request
headers, body limits, authentication) and the handlers here turn the framework's own errors
(validation, 404/405 routing) into problems too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

if TYPE_CHECKING:  # the streaming bridge imports this module: keep its start light
    from functions.app.domain.errors import ErrorEntry

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://dispatch-replay.example/problems/"
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
        "current": {"type": "object", "description": "409 only: the session now."},
        "conflicts": {
            "type": "array",
            "items": {"type": "object"},
            "description": "contradictory-filters only: which filters contradict each other.",
        },
    },
}


class Problem(Exception):
    """An HTTP error with a stable ``type`` slug, a title and a human-readable detail."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str = "",
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    @classmethod
    def of(cls, entry: ErrorEntry) -> Problem:
        """The problem of a described error (``functions.app.domain.errors.describe``)."""
        return cls(
            entry.status, entry.slug, entry.title, entry.detail, entry.headers, **entry.extra
        )

    def body(self, instance: str | None = None) -> dict[str, Any]:
        """The problem+json document."""
        document: dict[str, Any] = {
            "type": TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            document["detail"] = self.detail
        if instance:
            document["instance"] = instance
        document.update(self.extra)
        return document


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    """A JSONResponse for ``problem``."""
    return JSONResponse(
        problem.body(instance),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


_TITLES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-error", "Invalid request"),
    429: ("too-many-requests", "Too many requests"),
    503: ("unavailable", "Service unavailable"),
}


def install(app: FastAPI) -> None:
    """Make every error of ``app`` a problem+json response."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"location": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ][:20]
        json_error = any(e.get("type") == "json_invalid" for e in exc.errors())
        problem = Problem(
            400 if json_error else 422,
            "malformed-json" if json_error else "validation-error",
            "Malformed JSON body" if json_error else "Invalid request",
            errors[0]["message"] if errors else "",
            errors=errors,
        )
        return problem_response(problem, request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug, title = _TITLES.get(exc.status_code, ("error", "Error"))
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else ""
        problem = Problem(exc.status_code, slug, title, detail, headers=dict(exc.headers or {}))
        return problem_response(problem, request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Details stay in the logs (the caller's middleware logs them with the request id).
        problem = Problem(
            500,
            "internal-error",
            "Internal error",
            "The request failed unexpectedly; it has been logged.",
        )
        return problem_response(problem, request.url.path)


def documented(**descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for problem+json errors: ``documented(e404="...", e409="...")``."""
    return {
        int(code.removeprefix("e")): {
            "description": text,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for code, text in descriptions.items()
    }
