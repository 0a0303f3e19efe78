"""The console's files: the page, its scripts and styles, and its configuration, served by the stack.

The console is a single page (``index.html``) whose scripts call the admin API. Its files are served as
they are, from one folder, without a front-end build: ES modules, one stylesheet and the charting
library's browser build (``make`` copies it from the pinned npm package). ``config.json`` tells the page
where the admin API is and how to sign in; it is the only file made per deployment.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_serializer
from pydantic.alias_generators import to_camel

#: What each kind of file is served as; nothing else is served.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
}
#: A file's name: letters, digits, dots, dashes and underscores, one folder deep, no ``..``.
FILE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
#: Scripts and styles only from the stack itself; the page may call the admin API (same origin) and the
#: sign-in endpoints; nothing may frame it.
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
INDEX = "index.html"
CONFIG = "config.json"
#: issue 14: what the console asks the hosted login for (OpenID Connect: who signed in, and their email)
SIGN_IN_SCOPES = ("openid", "email", "profile")
#: the scope the admin API's console routes require: Cognito's access tokens carry it, its ID tokens (also
#: issued to the console's client) carry no scope, so only access tokens are accepted
ROUTE_SCOPE = "openid"


class SignIn(BaseModel):
    """issue 14: the hosted login the page signs in at (OAuth 2.0 authorization code with PKCE)."""

    model_config = ConfigDict(frozen=True, alias_generator=to_camel, validate_by_name=True)

    #: the hosted login's base URL (``<url>/oauth2/authorize``, ``<url>/oauth2/token``, ``<url>/logout``)
    url: HttpUrl
    #: the console's public app client (no secret)
    client_id: str = Field(min_length=1)
    scopes: tuple[str, ...] = SIGN_IN_SCOPES

    @property
    def origin(self) -> str:
        """Where the page exchanges and refreshes its tokens: the only other origin it calls."""
        return f"{self.url.scheme}://{self.url.host}" + (
            f":{self.url.port}" if self.url.port not in (None, 80, 443) else ""
        )

    @field_serializer("url")
    def _url_as_given(self, url: HttpUrl) -> str:
        return str(url).rstrip("/")


class ConsoleConfig(BaseModel):
    """What the page reads first: where the admin API is, and how to sign in (None: no sign-in)."""

    model_config = ConfigDict(frozen=True, alias_generator=to_camel, validate_by_name=True)

    #: the prefix before /admin/... ("" locally; "/console" in the cloud, the routes that accept the sign-in)
    api_base: str = ""
    #: the hosted login, where the cloud deployment has one
    sign_in: SignIn | None = None

    def content_security_policy(self) -> str:
        connect = ["'self'"]
        if self.sign_in is not None:
            connect.append(self.sign_in.origin)
        return "; ".join(
            (
                "default-src 'none'",
                "script-src 'self'",
                "style-src 'self'",
                "img-src 'self' data:",
                f"connect-src {' '.join(connect)}",
                "base-uri 'none'",
                "form-action 'self'",
                "frame-ancestors 'none'",
            )
        )


def answer(path: str, static: Path, config: ConsoleConfig) -> dict[str, Any]:
    """The API Gateway response for ``GET path``: ``/`` is the page, ``/console/<file>`` its files."""
    headers = SECURITY_HEADERS | {"content-security-policy": config.content_security_policy()}
    if path in ("/", ""):
        name = INDEX
    elif path.startswith("/console/") and FILE_NAME.match(path.removeprefix("/console/")):
        name = path.removeprefix("/console/")
    else:
        return _text(404, "not found", headers)
    if name == CONFIG:
        body = json.dumps(config.model_dump(mode="json", by_alias=True), separators=(",", ":")).encode()
        return _file(body, CONTENT_TYPES[".json"], headers | {"cache-control": "no-store"})
    file = static / name
    kind = CONTENT_TYPES.get(file.suffix)
    if kind is None or not file.is_file():
        return _text(404, "not found", headers)
    # the page and its scripts are revalidated on every load: a deployment shows at once
    return _file(file.read_bytes(), kind, headers | {"cache-control": "no-cache"})


def _file(body: bytes, kind: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": headers | {"content-type": kind},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def _text(status: int, text: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": headers | {"content-type": "text/plain; charset=utf-8"},
        "body": text,
        "isBase64Encoded": False,
    }
