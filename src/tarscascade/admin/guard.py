"""Request guards in front of the routes: the admin token, the body size (listen safety
lives in ``auth/listen.py``, re-exported here).

Both checks run as ASGI middleware, before routing and before FastAPI reads the body: a
write without the token is refused with 401/403 whatever its body looks like (a route
dependency would run only after the body was parsed, so a malformed body would answer
400 and tell an unauthenticated caller about validation), and an oversized body is
refused without being held in memory.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tarscascade.admin.http import error_body
from tarscascade.auth import credential_equal
from tarscascade.auth.listen import (
    UnsafeListenError,
    check_listen_safety,
    check_tars_listen_safety,
)

#: requests with these methods change state and need the token when one is configured
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_MAX_BODY = 1024 * 1024

__all__ = [
    "DEFAULT_MAX_BODY",
    "GuardMiddleware",
    "UnsafeListenError",
    "check_listen_safety",
    "check_tars_listen_safety",
]


async def send_json_error(send: Send, status: int, message: str, headers: dict[str, str]) -> None:
    body = json.dumps(error_body(status, message)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    """Token check for writes, then the body-size limit (the body is buffered, bounded)."""

    def __init__(self, app: ASGIApp, *, token: str | None, max_body: int = DEFAULT_MAX_BODY):
        self.app = app
        self.token = token.encode() if token else None
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
        if self.token is not None and scope["method"] in WRITE_METHODS:
            refusal = self._auth_refusal(headers.get("authorization"))
            if refusal is not None:
                status, reason = refusal
                await send_json_error(send, status, reason, {"WWW-Authenticate": "Bearer"})
                return
        declared = headers.get("content-length", b"0").decode("latin-1")
        if declared.isdigit() and int(declared) > self.max_body:
            await self._too_large(send)
            return
        if scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        # Chunked bodies carry no length: read up to the limit before the app sees any.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([], message, receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(chunks, None, receive), send)

    def _auth_refusal(self, header: bytes | None) -> tuple[int, str] | None:
        assert self.token is not None
        if header is None:
            return 401, "this registry needs the admin token for writes (Authorization: Bearer)"
        scheme, _, given = header.partition(b" ")
        if scheme.lower() != b"bearer" or not given.strip():
            return 401, "the Authorization header must be 'Bearer <token>'"
        if not credential_equal(given.strip(), self.token):
            return 403, "wrong admin token"
        return None

    async def _too_large(self, send: Send) -> None:
        await send_json_error(
            send, 413, f"request body larger than {self.max_body} bytes", {"Connection": "close"}
        )


def _replay(chunks: list[bytes], first: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that hands out the buffered body once, then the real channel."""
    pending: list[Message] = []
    if first is not None:
        pending.append(first)
    else:
        pending.append({"type": "http.request", "body": b"".join(chunks), "more_body": False})

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
