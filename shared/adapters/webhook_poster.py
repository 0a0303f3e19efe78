"""Webhooks over HTTPS with the standard library: one POST, its status, nothing followed.

The body is the JSON delivery signed (``shared.delivery.webhooks``); this adapter adds
``Content-Type: application/json`` and ``User-Agent: Lifecycle-Webhooks/1`` to the headers it is given
and answers the status of any HTTP answer, 3xx included: a redirect is not followed (it would take the
signed body somewhere the automation did not name). The use case decides what a status means (2xx done;
4xx, except 408 and 429, refused; anything else retried with backoff).

Only ``https`` URLs, unless the host is one of ``plain_http_hosts`` (the local stack and the tests allow
``127.0.0.1``): a URL that is not one raises ``ProviderRefused("insecure_url")``, a URL that is not a URL
``ProviderRefused("invalid_url")``; neither can ever be sent. Network failures, TLS failures and timeouts
raise ``DependencyUnavailable`` (retried). Proxies from the environment are not used.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from shared.delivery.ports import ProviderRefused
from shared.errors import DependencyUnavailable

USER_AGENT = "Lifecycle-Webhooks/1"
#: what is read of an answer's body (then the connection is closed): the status is the answer
MAX_ANSWER_BYTES = 64 * 1024


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_: object, **__: object) -> None:
        return None  # the 3xx comes back as an HTTPError, whose status is returned


class HttpWebhookPoster:
    def __init__(self, *, plain_http_hosts: frozenset[str] = frozenset()) -> None:
        self._plain_http_hosts = frozenset(host.lower() for host in plain_http_hosts)
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        """The HTTP status of the answer; raises ``DependencyUnavailable`` without one."""
        checked_url(url, plain_http_hosts=self._plain_http_hosts)
        request = urllib.request.Request(url, data=body, method="POST")
        for name, value in headers.items():
            request.add_header(name, value)
        request.add_header("Content-Type", "application/json")
        request.add_header("User-Agent", USER_AGENT)
        try:
            answer = self._opener.open(request, timeout=timeout)
        except urllib.error.HTTPError as error:  # an answer, whatever its status
            _drain(error)
            return int(error.code)
        except (OSError, http.client.HTTPException) as exc:  # URLError, refused, reset, TLS, timeout
            raise DependencyUnavailable("the webhook's endpoint did not answer; retry") from exc
        _drain(answer)
        return int(answer.status)


def checked_url(url: str, *, plain_http_hosts: frozenset[str]) -> str:
    """``url`` if a webhook may be posted to it: ``https``, or ``http`` to one of ``plain_http_hosts``
    (lower case); else ``ProviderRefused`` (``invalid_url``, ``insecure_url``)."""
    if any(c.isspace() or not c.isprintable() for c in url):
        raise ProviderRefused("invalid_url")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - a port that is not a number raises ValueError
    except ValueError as exc:
        raise ProviderRefused("invalid_url") from exc
    if not host or parts.scheme not in ("https", "http"):
        raise ProviderRefused("invalid_url")
    if parts.scheme == "http" and host not in plain_http_hosts:
        raise ProviderRefused("insecure_url")
    return url


def _drain(answer: Any) -> None:
    """Read a little of the answer's body and close it: the status has been given, so a body that is
    slow or cut short changes nothing (a retry would deliver the webhook twice)."""
    try:
        answer.read(MAX_ANSWER_BYTES)
    except (OSError, http.client.HTTPException):
        pass
    finally:
        answer.close()
