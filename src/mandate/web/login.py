"""The UI's login: a reader (or any) token typed once, kept in a cookie the page's scripts cannot read.

`GET /login` shows the form; `POST /login` checks the token and sets `mandate_token` (`Secure`, `HttpOnly`,
`SameSite=Strict`, path `/`, for the browser session), then goes back to the page that asked (`next`, a local path
only); `POST /logout` clears the cookie. The API never reads the cookie: it takes `Authorization: Bearer` only.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mandate.tokens import Permission
from mandate.web.auth import COOKIE, Tokens
from mandate.web.ui import page

router = APIRouter(include_in_schema=False)


def _local(target: str | None) -> str:
    """Only a path of this server (never `//host` or a URL): an open redirect would carry the user away."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _form(next_path: str, status: int = 200, problem: str | None = None) -> HTMLResponse:
    problems = [("token", problem)] if problem else []
    return page("login.html", status, nav="", next_path=next_path, problems=problems)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> HTMLResponse:
    return _form(_local(request.query_params.get("next")))


@router.post("/login")
async def log_in(request: Request) -> Response:
    fields = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=4)
    secret = (fields.get("token") or [""])[0].strip()
    next_path = _local((fields.get("next") or ["/"])[0])
    tokens: Tokens = request.app.state.tokens
    found = await tokens.principal(secret) if secret else None
    if found is None:
        client = request.client
        wait = request.app.state.auth_failures.record(client.host if client else "unknown")
        if wait is not None:
            return _form(next_path, 429, f"too many bad tokens from this address; retry in {wait} s")
        return _form(next_path, 401, "that token is unknown, revoked or expired")
    if not found.may(Permission.READ):
        return _form(next_path, 403, f"a token with role {found.role.value} may not read")
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(COOKIE, secret, path="/", secure=True, httponly=True, samesite="strict")
    return response


@router.post("/logout")
async def log_out() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response
