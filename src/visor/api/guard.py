"""Who may talk to a local server, as Jupyter's does it: a web page open in the same browser
must not read or change the workspace.

- `Host` must be a loopback name (DNS rebinding points a foreign name at 127.0.0.1), unless the
  server was bound to another address on purpose (`visor serve --host ... --allow-remote`).
- A request that changes something (POST, PUT, PATCH, DELETE) must come from no page or from
  the server's own (`Origin`), and carry the server's token: the `X-Visor-Token` header (the
  CLI and Python clients read it from server.json) or the `visor_token` cookie, which the UI
  gets, HTTP-only and same-site, with its page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from fastapi.responses import JSONResponse

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TOKEN_HEADER = "X-Visor-Token"
TOKEN_COOKIE = "visor_token"


def hostname(host: str) -> str:
    """`127.0.0.1:8000` -> `127.0.0.1`, `[::1]:8000` -> `[::1]`."""
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def refusal(request: Request, token: str | None, any_host: bool) -> str | None:
    """Why `request` is refused, or None when it may go on."""
    host = request.headers.get("host", "")
    if not any_host and hostname(host).lower() not in LOOPBACK_NAMES:
        return f"Host {host!r} is not this machine (start visor serve with --allow-remote)"
    if request.method not in MUTATING:
        return None
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{host}":
        return f"a request from another site ({origin}) may not change this workspace"
    if token is not None and token not in (
        request.headers.get(TOKEN_HEADER),
        request.cookies.get(TOKEN_COOKIE),
    ):
        return "missing or wrong token (clients read it from VISOR_HOME/server.json)"
    return None


def guard(
    token: Callable[[], str | None], any_host: bool
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """The middleware: refuses what `refusal` refuses (403), and hands the UI its cookie with
    every page."""

    async def middleware(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        secret = token()
        reason = refusal(request, secret, any_host)
        if reason is not None:
            return JSONResponse({"error": {"code": "forbidden", "message": reason}}, 403)
        response = await call_next(request)
        if secret and response.headers.get("content-type", "").startswith("text/html"):
            response.set_cookie(TOKEN_COOKIE, secret, httponly=True, samesite="strict")
        return response

    return middleware
