"""Who may use the API, checked before any route runs.

Always, keys or not: the ``Host`` header must name this controller (localhost names, the bound
address, ``controller.allowed_hosts``) — a DNS-rebinding page gets 421 — and a request that
changes something and carries an ``Origin`` must come from the controller's own origin (or one
of ``controller.allowed_origins`` / ``controller.cors_origins``) — a cross-site form or fetch
gets 403. Clients that send no ``Origin`` (curl, scripts, the original's tools) are not affected.

When keys are configured every request needs ``Authorization: Bearer <key>`` (401 without a
good one): operator keys may do everything, viewer keys may read, stream and scrape (403 for a
change). The dashboard page, its assets, the API docs and ``/api/system/health`` stay open so a
browser can load the page that asks for a key and a load balancer can probe. Keys are compared
in constant time and never logged.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import socket
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Receive, Scope, Send

from skalds.config.schema import split_keys
from skalds.controller.errors import error_body

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OPEN_PATHS = ("/api/system/health", "/api/docs", "/api/redoc", "/api/openapi.json")
OPEN_PREFIXES = ("/dashboard", "/static/", "/docs-assets/")
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "localhost.localdomain", "ip6-localhost"})


def machine_names() -> set[str]:
    """This machine's host names and addresses (for a controller bound to every interface)."""
    names = {socket.gethostname(), socket.getfqdn()}
    try:
        names.update(socket.gethostbyname_ex(socket.gethostname())[2])
    except OSError:
        pass
    return {n.lower() for n in names if n}


@dataclass(frozen=True)
class AccessPolicy:
    """The keys and the names and origins a controller accepts."""

    operator_keys: tuple[str, ...] = ()
    viewer_keys: tuple[str, ...] = ()
    hosts: frozenset[str] = field(default_factory=lambda: LOCAL_NAMES)
    any_host: bool = False
    origins: frozenset[str] = frozenset()

    @classmethod
    def build(
        cls,
        bound_host: str,
        operator_keys: object = None,
        viewer_keys: object = None,
        allowed_hosts: object = None,
        allowed_origins: object = None,
    ) -> AccessPolicy:
        """The policy of a controller bound to ``bound_host``."""
        hosts = set(LOCAL_NAMES) | {h.lower() for h in split_keys(allowed_hosts)}
        if bound_host in ("0.0.0.0", "::", ""):
            hosts |= machine_names()
        else:
            hosts.add(bound_host.lower())
        return cls(
            operator_keys=tuple(split_keys(operator_keys)),
            viewer_keys=tuple(split_keys(viewer_keys)),
            hosts=frozenset(hosts),
            any_host="*" in hosts,
            origins=frozenset(o.rstrip("/") for o in split_keys(allowed_origins)),
        )

    @property
    def keys_required(self) -> bool:
        """Whether requests need a key."""
        return bool(self.operator_keys or self.viewer_keys)

    def host_allowed(self, host_header: str) -> bool:
        """Whether the ``Host`` header names this controller."""
        if self.any_host:
            return True
        name = host_header.strip().lower()
        if name.startswith("["):  # [::1]:8000
            name = name[1 : name.find("]")]
        elif name.count(":") == 1:
            name = name.rsplit(":", 1)[0]
        if name in self.hosts:
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    def origin_allowed(self, origin: str, host_header: str, scheme: str) -> bool:
        """Whether a change may come from a page of ``origin``."""
        origin = origin.rstrip("/")
        return (
            origin in self.origins
            or origin == f"{scheme}://{host_header}"
            or origin
            in (
                f"http://{host_header}",
                f"https://{host_header}",
            )
        )

    def role(self, authorization: str) -> str | None:
        """``operator``, ``viewer`` or None for an ``Authorization`` header."""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        token = token.strip()
        if any(hmac.compare_digest(token, k) for k in self.operator_keys):
            return "operator"
        if any(hmac.compare_digest(token, k) for k in self.viewer_keys):
            return "viewer"
        return None


class Access:
    """ASGI middleware enforcing an :class:`AccessPolicy`."""

    def __init__(self, app: ASGIApp, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        method, path = scope["method"], scope["path"]
        host = headers.get("host", "")
        if not self.policy.host_allowed(host):
            await _refuse(
                send,
                421,
                "MisdirectedRequest",
                f"this controller does not answer for host {host!r} (controller.allowed_hosts)",
            )
            return
        origin = headers.get("origin")
        if method in MUTATING and origin and not self.policy.origin_allowed(origin, host, scope.get("scheme", "http")):
            await _refuse(
                send,
                403,
                "ForbiddenOrigin",
                f"changes from pages of {origin} are not allowed (controller.allowed_origins)",
            )
            return
        if self.policy.keys_required and method != "OPTIONS" and not _open(path):
            role = self.policy.role(headers.get("authorization", ""))
            if role is None:
                await _refuse(send, 401, "Unauthorized", "a key is needed: Authorization: Bearer <key>", challenge=True)
                return
            if role == "viewer" and method in MUTATING:
                await _refuse(send, 403, "Forbidden", "a viewer key may only read; this needs an operator key")
                return
        await self.app(scope, receive, send)


def _open(path: str) -> bool:
    return path == "/" or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


async def _refuse(send: Send, status: int, error: str, detail: str, *, challenge: bool = False) -> None:
    data = json.dumps(error_body(error, detail)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if challenge:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
