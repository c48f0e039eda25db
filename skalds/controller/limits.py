"""The request size limit: a body larger than ``max_request_bytes`` is refused with 413 before
any of it is parsed or stored."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skalds.errors import PayloadTooLarge


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                receive = _refusing(int(value), limit)
                break
        else:
            receive = _counting(receive, limit)
        await self.app(scope, receive, send)


def _too_large(size: int | None, limit: int) -> PayloadTooLarge:
    got = f"{size} bytes" if size is not None else "more"
    return PayloadTooLarge(
        f"request body too large: {got}, the limit is {limit} bytes (controller.max_request_bytes)",
        field="body",
        limit=limit,
    )


def _refusing(size: int, limit: int) -> Receive:
    async def receive() -> Message:
        raise _too_large(size, limit)

    return receive


def _counting(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _too_large(None, limit)
        return message

    return counted
