"""Streamlit's own HTTP endpoints that would answer anyone, without a login: the server does not serve them.

`/_stcore/metrics` tells any caller, signed in or not, which cached functions ran and how much they hold
(and with `server.unsafeMetricsUserAttributes`, who is using the app). Streamlit 1.67 has no setting to turn
it off, so an ASGI middleware in front of Streamlit's routes answers 404 for it, in every mode.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HIDDEN_PATHS = ("/_stcore/metrics",)


def hidden(path: str) -> bool:
    """Say whether a request path is one of the hidden endpoints (under any base URL path)."""
    path = path.rstrip("/")
    return any(path.endswith(hidden_path) for hidden_path in HIDDEN_PATHS)


class HiddenEndpoints:
    """ASGI middleware: answer 404 Not Found for the hidden endpoints; pass every other request on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and hidden(scope.get("path", "")):
            body = b"Not Found"
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
