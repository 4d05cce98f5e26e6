"""GET / and GET /static/{name}: the page (static files shipped in the package, `api/static/`).

The page is plain JavaScript that calls the tenant-scoped routes with the key the user pastes; it
needs nothing from any other origin. Every answer here carries a Content-Security-Policy that allows
scripts, styles and connections to this origin only (no inline script or style), so even a name
from a billing file that slipped into the page as markup could not run. Only the files shipped in
the folder are served, by exact name: anything else (`..`, a subfolder) is the usual 404 problem.
Not in the OpenAPI document: these are not API routes.
"""

from __future__ import annotations

import functools
from pathlib import Path

from fastapi import APIRouter
from starlette.responses import Response

from costlake.api.problems import not_found

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).resolve().parent.parent / "static"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


@functools.cache
def _shipped() -> dict[str, tuple[bytes, str]]:
    """The page's files by name, read once: (content, media type)."""
    return {
        p.name: (p.read_bytes(), TYPES[p.suffix])
        for p in sorted(STATIC.iterdir())
        if p.is_file() and p.suffix in TYPES
    }


def _file(name: str) -> Response:
    found = _shipped().get(name)
    if found is None:
        raise not_found("such file")
    content, media_type = found
    return Response(content, media_type=media_type, headers=HEADERS)


@router.get("/")
def index() -> Response:
    return _file("index.html")


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name == "index.html":  # the page lives at /
        raise not_found("such file")
    return _file(name)
