"""HTTP pieces every service API shares: the app factory, health endpoints, auth, one error renderer.

Errors are rendered as problem+json (RFC 9457): `{"type", "title", "status", "detail",
"errors": [{"field", "problem"}]}`, so a client always learns which field is wrong and why.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from pydantic import BaseModel, Field

from tarifa_common import auth, errors
from tarifa_common.runtime import ServiceRuntime

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_STATUS: dict[type[errors.TarifaError], int] = {
    errors.InvalidInput: 422,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Forbidden: 403,
    errors.Unavailable: 503,
}


class FieldProblemModel(BaseModel):
    field: str = Field(examples=["due_day"])
    problem: str = Field(examples=["must be between 1 and 25"])


class Problem(BaseModel):
    """The body of every error answer."""

    type: str = Field(examples=["invalid_input"])
    title: str = Field(examples=["Invalid input"])
    status: int = Field(examples=[422])
    detail: str = Field(examples=["due_day: must be between 1 and 25"])
    errors: list[FieldProblemModel] = Field(default_factory=list)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing or invalid bearer token"},
    403: {"model": Problem, "description": "The token's roles do not allow this"},
    422: {"model": Problem, "description": "A field is invalid; `errors` names it"},
}


def problem(
    status: int, code: str, title: str, detail: str, problems: Sequence[errors.FieldProblem] = ()
) -> JSONResponse:
    body = Problem(
        type=code,
        title=title,
        status=status,
        detail=detail,
        errors=[FieldProblemModel(field=p.field, problem=p.problem) for p in problems],
    )
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body.model_dump(), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _status_of(error: errors.TarifaError) -> int:
    for kind, status in _STATUS.items():
        if isinstance(error, kind):
            return status
    return 400


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.TarifaError)
    async def tarifa_error(_: Request, error: errors.TarifaError) -> JSONResponse:
        status = _status_of(error)
        return problem(status, error.code, type(error).__name__, error.message, error.problems)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            errors.FieldProblem(".".join(str(part) for part in item["loc"] if part != "body"), item["msg"])
            for item in error.errors()
        ]
        detail = "; ".join(f"{p.field}: {p.problem}" for p in problems)
        return problem(422, "invalid_input", "Invalid input", detail, problems)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        return problem(error.status_code, f"http_{error.status_code}", str(error.detail), str(error.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            500,
            "internal_error",
            "Internal error",
            "Something went wrong on our side; the error is logged with this request's trace id.",
        )


_bearer = HTTPBearer(auto_error=False, description="A token from `tarifa token --tenant T --role R`")


def runtime_of(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


def require(*roles: str) -> Any:
    """A dependency that admits a bearer token holding one of `roles` (admin always passes)."""
    wanted = frozenset(roles)

    async def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> auth.Principal:
        if credentials is None:
            raise HTTPException(401, "a bearer token is required (mint one with `tarifa token`)")
        settings = runtime_of(request).settings
        try:
            principal = auth.verify(
                credentials.credentials, settings.jwt_secret.get_secret_value(), issuer=settings.jwt_issuer
            )
        except auth.InvalidToken as error:
            raise HTTPException(401, str(error)) from error
        if wanted and not principal.has_any(wanted):
            raise HTTPException(
                403, f"this needs one of the roles {sorted(wanted)}; the token has {sorted(principal.roles)}"
            )
        return principal

    return Depends(dependency)


def health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @router.get(
        "/readyz",
        summary="The broker and the database answer",
        responses={503: {"description": "A dependency is unreachable; `checks` says which"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        runtime = runtime_of(request)
        ready, checks = await runtime.readiness()
        return JSONResponse(
            {
                "status": "ready" if ready else "not ready",
                "service": runtime.service,
                "instance": runtime.instance_id,
                "checks": checks,
            },
            status_code=200 if ready else 503,
        )

    return router


def create_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    description: str,
    version: str,
    routers: Sequence[APIRouter] = (),
    openapi_tags: list[dict[str, Any]] | None = None,
) -> FastAPI:
    """A service's FastAPI app: lifespan runs the runtime, `/v1` routers, health, errors, tracing."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        openapi_tags=[{"name": "health", "description": "Liveness and readiness"}, *(openapi_tags or [])],
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    app.include_router(health_router())
    for router in routers:
        app.include_router(router, prefix="/v1", responses=PROBLEM_RESPONSES)
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz")
    return app
