"""The HTTP app: control API, history queries, the SSE stream (``functions.app.application``).

Importing this package first makes FastAPI's OpenAPI document models
(``fastapi.openapi.models``, some forty pydantic classes) deferred: pydantic builds them
the first time ``/openapi.json`` or ``/docs`` is generated instead of at import, when
every cold start paid for them (~35 ms of each function's init, ``python -m bench
coldstart``). No Lambda request needs them: API Gateway routes only ``/api/*`` to the
control function, and neither page is under it. The other models FastAPI defines while
the window is open (security schemes' credentials, validation errors) are built right
after, as they would have been, so no request pays for a deferred build.

Where ``pydantic.v1`` is not shipped (the Lambda folders drop it: lambda_build.py), it is
marked missing in ``sys.modules`` once, so that FastAPI's "is this a pydantic 1 model?"
checks, which import it for every parameter and type of every route, fail at once
instead of searching the package's folder again each time (183 searches in the control
function's init).
"""

from __future__ import annotations

import importlib.util
import sys


def _import_fastapi_with_deferred_openapi_models() -> None:
    from pydantic import BaseModel

    config = BaseModel.model_config  # what every model's config starts from
    before = config.get("defer_build")
    config["defer_build"] = True
    try:
        import fastapi
        import fastapi.openapi.models  # noqa: F401
    finally:
        if before is None:
            config.pop("defer_build", None)
        else:
            config["defer_build"] = before
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] != "fastapi" or name == "fastapi.openapi.models":
            continue
        for value in list(vars(module).values()):
            if (
                isinstance(value, type)
                and issubclass(value, BaseModel)
                and value.__module__ == name
                and not value.__pydantic_complete__
            ):
                value.model_rebuild()


if "pydantic.v1" not in sys.modules and importlib.util.find_spec("pydantic.v1") is None:
    sys.modules["pydantic.v1"] = None  # type: ignore[assignment]  # import fails at once
if "fastapi" not in sys.modules:
    _import_fastapi_with_deferred_openapi_models()
