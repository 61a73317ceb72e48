"""The API's documentation pages, served from installed files: no CDN, so they work in a closed network.

    GET /docs                   Swagger UI over /openapi.json
    GET /redoc                  ReDoc over /openapi.json
    GET /static/api-docs/…      their scripts and stylesheet, from the `fastapi-offline` package (Swagger UI:
                                Apache-2.0, ReDoc: MIT; the licences ship inside the package)

FastAPI's own pages load those files from a CDN, so `create_app` turns them off and calls `install`. The pages carry
no inline script (Swagger UI starts from `static/swagger-init.js`; ReDoc reads its `spec-url` attribute), so their
Content-Security-Policy allows scripts from this server only; both libraries inject styles, and ReDoc searches in a
blob worker, which the policy allows.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse

ASSETS = Path(fastapi_offline.__file__).parent / "static"
PREFIX = "/static/api-docs"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SWAGGER = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Mandate API · Swagger UI</title>
<link rel="stylesheet" href="{PREFIX}/swagger-ui.css"><link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
</head><body><main id="swagger-ui" data-openapi="/openapi.json"></main>
<script src="{PREFIX}/swagger-ui-bundle.js"></script><script src="/static/swagger-init.js"></script>
</body></html>"""
REDOC = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Mandate API · ReDoc</title><link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
</head><body><redoc spec-url="/openapi.json"></redoc><script src="{PREFIX}/redoc.standalone.js"></script>
</body></html>"""


async def swagger_page(_request: Request) -> HTMLResponse:
    return HTMLResponse(SWAGGER, headers={"Content-Security-Policy": CSP})


async def redoc_page(_request: Request) -> HTMLResponse:
    return HTMLResponse(REDOC, headers={"Content-Security-Policy": CSP})


def install(app: FastAPI) -> None:
    """Serve /docs and /redoc and their files (call before mounting `/static`, which would shadow the files)."""
    app.add_route("/docs", swagger_page, include_in_schema=False)
    app.add_route("/redoc", redoc_page, include_in_schema=False)
    app.mount(PREFIX, StaticFiles(directory=ASSETS), name="api-docs")
