"""The request size limit: a body larger than ``max_request_bytes`` is refused with 413 before
any of it is parsed or stored."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skalds.controller.errors import error_body


class BodyLimit:
    """ASGI middleware: answer 413 for request bodies over ``max_bytes``, whether their size
    is declared (``Content-Length``) or only found while reading (chunked). A body within the
    limit is read here and handed on unchanged."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(send, int(value))
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([], message, receive), send)  # client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(send, None)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(chunks, None, receive), send)

    async def _refuse(self, send: Send, size: int | None) -> None:
        got = f"{size} bytes" if size is not None else "more"
        body = error_body(
            "PayloadTooLarge",
            f"request body too large: {got}, the limit is {self.max_bytes} bytes (controller.max_request_bytes)",
            field="body",
            limit=self.max_bytes,
        )
        data = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": data})


def _replay(chunks: list[bytes], last: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that hands out the body read already, then defers to the real one."""
    pending: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}] if chunks else []
    if last is not None:
        pending.append(last)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
