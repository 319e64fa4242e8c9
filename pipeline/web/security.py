"""Response headers that keep the pages to themselves: a strict Content Security Policy (only
this app's own scripts, styles and images; no frames, no foreign form targets), no sniffing,
no referrer, and nothing cached except the static assets."""

from __future__ import annotations

from flask import Response, request

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def add_security_headers(response: Response) -> Response:
    """The ``after_request`` hook: sets each header unless the route already chose its own
    (face thumbnails set their own ``Cache-Control``)."""
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response
