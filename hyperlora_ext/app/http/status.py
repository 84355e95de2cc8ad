"""One HTTP status per kind of error, the same on every route of the API (``STATUS``, docs/api.md),
and a route class that turns anything else into a 500 naming what failed (``ErrorRoute``)."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Callable, Iterator

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from ...errors import (
    DamagedIdentityError,
    HyperLoRAError,
    MissingModelsError,
    NameConflictError,
    NoFaceError,
    UnknownIdentityError,
)

log = logging.getLogger(__name__)
ACTIONS = {"version": "reading the version", "models": "listing the models",
           "list_identities": "listing the identities", "create": "creating the identity",
           "get": "reading the identity", "crops": "reading the face crops", "delete": "deleting the identity",
           "rename": "renaming the identity", "save_lora": "saving the LoRA", "mix": "mixing the identities",
           "score_likeness": "measuring the likeness"}


# The service's errors -> HTTP status, first match wins; anything else is a 500 (ErrorRoute).
STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (UnknownIdentityError, 404),  # an identity name that is not stored (a plain KeyError is a bug: 500)
    (NoFaceError, 422),  # no usable face in the photos; detail.skipped gives each image's reason
    (FileExistsError, 409),  # the name (any case) or the LoRA file is taken: send "overwrite": true
    (DamagedIdentityError, 409),  # the stored identity file cannot be used: delete or re-create it
    (NameConflictError, 409),  # identities whose names differ only in case: rename or delete all but one
    (MissingModelsError, 503),  # model files missing (or their download failed)
    (ValueError, 400),  # bad input: names, numbers
    (HyperLoRAError, 400),  # bad input the core refuses: images, mix expressions, a base weight without Base-LoRA
)


def http_status(exc: BaseException) -> int | None:
    """The status ``STATUS`` gives ``exc``, or None for an unexpected one."""
    return next((status for kind, status in STATUS if isinstance(exc, kind)), None)


@contextmanager
def http_errors() -> Iterator[None]:
    """Turn the service's errors into HTTP errors with their message (``STATUS``); let anything
    else through to ``ErrorRoute`` (a 500)."""
    try:
        yield
    except Exception as exc:
        status = http_status(exc)
        if status is None:
            raise
        detail = {"message": str(exc), "skipped": exc.failures} if isinstance(exc, NoFaceError) else str(exc)
        raise HTTPException(status, detail) from None


class ErrorRoute(APIRoute):
    """A route whose unexpected exceptions become a 500 JSON ``{"detail": "<action> failed: ..."}``,
    logged with their traceback; HTTP and validation errors pass through unchanged."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()
        action = ACTIONS.get(self.name, self.name)

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except (StarletteHTTPException, RequestValidationError):
                raise
            except Exception as exc:
                log.exception("HyperLoRA API: %s %s failed", request.method, request.url.path)
                return JSONResponse(status_code=500, content={
                    "detail": f"HyperLoRA: {action} failed: {type(exc).__name__}: {exc} (details in the server log)"})

        return run
