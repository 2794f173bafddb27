"""The desk's guard rails, as one ASGI middleware: the access token (bearer header or session
cookie), the Host header check, CSRF on every POST, and the security headers on every answer.

    * A token is required whenever `token` is set (it must be for a non-loopback bind: cli/serve.py
      refuses to start otherwise). `Authorization: Bearer TOKEN` or the `pps_session` cookie the
      login form sets (HttpOnly, SameSite=Strict, Secure under TLS); anything else gets 401.
      The cookie holds an HMAC of the token, never the token itself.
    * CSRF: the double-submit pattern. Every page sets a random `pps_csrf` cookie (HttpOnly,
      SameSite=Strict); every form carries the same value in a hidden `csrf` field; a POST whose
      field and cookie differ, or whose Origin is another site, gets 403.
    * Host header: without a token (loopback), only the names the server listens on and
      localhost, so a DNS-rebinding page cannot read a loopback desk (`--allow-host` adds one,
      for a reverse proxy).
    * Content-Security-Policy: scripts only from the desk's own /static files (no inline script,
      no handlers, no eval), no frames, no other origin; nosniff; the referrer only to the
      desk itself (so a form post carries its Origin, which the CSRF check reads).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SESSION_COOKIE = "pps_session"
CSRF_COOKIE = "pps_csrf"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
NO_STORE = (b"cache-control", b"no-store")  # pages and data: never kept by a browser or proxy
STATIC_CACHE = (b"cache-control", b"max-age=300")  # the desk's own scripts and styles
OPEN_PATHS = ("/login", "/static/")


def session_value(token: str) -> str:
    """The session cookie's value for `token` (an HMAC: the cookie never holds the token)."""
    return hmac.new(token.encode(), b"ppsguard serve session", hashlib.sha256).hexdigest()


def cookies_of(scope: Scope) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: S112 -- a malformed cookie header is ignored
                continue
    return {k: m.value for k, m in jar.items()}


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def cookie_header(name: str, value: str, *, secure: bool, max_age: int | None = None) -> bytes:
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts).encode()


@dataclass
class Guard:
    """What the middleware checks: the token (None: loopback, no token), the Host names
    accepted, whether cookies get the Secure flag."""

    token: str | None
    hosts: frozenset[str] | None  # None: any Host (a token guards the desk)
    secure: bool = False
    session: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.session = session_value(self.token) if self.token else ""

    def authorised(self, scope: Scope) -> bool:
        if self.token is None:
            return True
        bearer = header(scope, b"authorization") or ""
        if bearer.lower().startswith("bearer ") and hmac.compare_digest(
            bearer[7:].strip().encode(), self.token.encode()
        ):
            return True
        cookie = cookies_of(scope).get(SESSION_COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), self.session.encode())

    def host_ok(self, scope: Scope) -> bool:
        if self.hosts is None:
            return True
        value = (header(scope, b"host") or "").lower()
        return value in self.hosts


class GuardMiddleware:
    """Wraps the Starlette app: refuses, or passes on with the headers and the CSRF cookie."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.guard.host_ok(scope):
            await _plain(send, 421, "unknown Host header: use the address the desk listens on")
            return
        path = str(scope.get("path", ""))
        if not path.startswith(OPEN_PATHS) and not self.guard.authorised(scope):
            await _plain(send, 401, "401: a token is needed (Authorization: Bearer, or /login)")
            return
        cookies = cookies_of(scope)
        csrf = cookies.get(CSRF_COOKIE) or ""
        fresh = not csrf
        if fresh:
            csrf = secrets.token_urlsafe(24)
        scope.setdefault("state", {})["csrf"] = csrf
        if scope.get("method") == "POST" and not self._same_origin(scope):
            await _plain(send, 403, "403: a form from another origin")
            return
        secure = self.guard.secure

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(HEADERS)
                headers.append(STATIC_CACHE if path.startswith("/static/") else NO_STORE)
                if fresh:
                    headers.append((b"set-cookie", cookie_header(CSRF_COOKIE, csrf, secure=secure)))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _same_origin(self, scope: Scope) -> bool:
        origin = header(scope, b"origin")
        if origin is None or origin == "null":
            return origin is None
        netloc = urlsplit(origin).netloc.lower()
        if self.guard.hosts is None:
            return netloc == (header(scope, b"host") or "").lower()
        return netloc in self.guard.hosts


def csrf_ok(scope: Scope, submitted: str | None) -> bool:
    """The form's hidden `csrf` field matches the cookie (the double-submit check)."""
    cookie = cookies_of(scope).get(CSRF_COOKIE, "")
    return bool(cookie) and bool(submitted) and hmac.compare_digest(cookie, str(submitted))


async def _plain(send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *HEADERS,
                NO_STORE,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def host_names(host: str, port: int) -> frozenset[str]:
    """The Host header values a server bound to `host`:`port` accepts."""
    names = {host.lower()}
    if host in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "::"):
        names |= {"127.0.0.1", "localhost", "[::1]"}
    if ":" in host and not host.startswith("["):
        names.add(f"[{host.lower()}]")
    out = set()
    for name in names:
        out.add(f"{name}:{port}")
        if port in (80, 443):
            out.add(name)
    return frozenset(out)
