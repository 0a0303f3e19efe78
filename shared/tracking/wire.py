"""From HTTP request bytes to JSON: encodings, size limits and the write key.

Pure functions: the caller hands over the body as API Gateway delivers it.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from dataclasses import dataclass
from typing import Any

from shared.errors import InvalidRequest, PayloadTooLarge, Unauthorized, UnsupportedMediaType

KB = 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Segment's limits: 32 KB per event, 500 KB per request, 2,500 events per batch."""

    max_request_bytes: int = 500 * KB
    max_event_bytes: int = 32 * KB
    max_batch_events: int = 2500


ACCEPTED_MEDIA_TYPES = frozenset({"application/json", "text/plain"})


def decode_body(
    body: str | None,
    *,
    is_base64: bool,
    content_type: str | None,
    content_encoding: str | None,
    limits: Limits,
) -> bytes:
    """The request body as plain JSON bytes, whatever the transport did to it."""
    media_type = (content_type or "application/json").split(";", 1)[0].strip().lower()
    if media_type not in ACCEPTED_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {media_type!r} is not supported; send application/json or text/plain"
        )
    raw = (body or "").encode("utf-8", "surrogatepass") if not is_base64 else _b64(body or "")
    # Compressed bodies are never much larger than the same body uncompressed.
    if len(raw) > limits.max_request_bytes + 1 * KB:
        raise PayloadTooLarge(f"request body is over the {limits.max_request_bytes // KB} KB limit")
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "gzip":
        raw = _gunzip(raw, limits.max_request_bytes)
    elif encoding not in ("identity", ""):
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported; send gzip or none")
    if len(raw) > limits.max_request_bytes:
        raise PayloadTooLarge(f"request body is over the {limits.max_request_bytes // KB} KB limit")
    return raw


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("body is not valid base64", code="invalid_body") from None


def _gunzip(data: bytes, limit: int) -> bytes:
    """Inflate at most ``limit`` bytes, so a gzip bomb costs nothing."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"decompressed body is over the {limit // KB} KB limit")
        out += inflater.flush()
    except zlib.error:
        raise InvalidRequest("body is not valid gzip", code="invalid_body") from None
    if not inflater.eof:
        raise InvalidRequest("gzip body is truncated", code="invalid_body")
    if len(out) > limit:
        raise PayloadTooLarge(f"decompressed body is over the {limit // KB} KB limit")
    return out


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object. ``NaN``, ``Infinity`` and ``1e400`` come back as floats: the call
    checks (``shared.tracking.values``) refuse them there, naming the field."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise InvalidRequest("body is nested too deeply", code="invalid_json") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"body is not valid JSON: {str(exc)[:120]}", code="invalid_json") from None
    if not isinstance(value, dict):
        raise InvalidRequest("body must be a JSON object", code="invalid_json")
    return value


def write_key_from(authorization: str | None, body: dict[str, Any]) -> str:
    """The write key: HTTP Basic user name (empty password), else ``writeKey`` in the body."""
    if authorization:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "basic" and credentials:
            try:
                user = base64.b64decode(credentials.strip(), validate=True).decode("utf-8").split(":", 1)[0]
            except (binascii.Error, ValueError):
                raise Unauthorized("Authorization header is not valid HTTP Basic") from None
            if user:
                return user
    key = body.get("writeKey")
    if isinstance(key, str) and key:
        return key
    batch = body.get("batch")
    if isinstance(batch, list):
        keys = {m.get("writeKey") for m in batch if isinstance(m, dict)}
        if len(keys) == 1 and isinstance(key := keys.pop(), str) and key:
            return key
    raise Unauthorized("missing write key: send it as the HTTP Basic user name or as writeKey in the body")
