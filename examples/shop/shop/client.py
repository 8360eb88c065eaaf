"""Calling the provider (``settings.SHOP_PROVIDER_URL``) over HTTP with the standard
library. Network trouble and 5xx answers raise ``ConnectionError`` (the tasks retry it);
a 4xx answer raises ``ProviderRejected`` (retrying would not help)."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings

TIMEOUT = 10.0  # seconds; well under the worker's lease


class ProviderRejected(Exception):
    """The provider refused the request (a 4xx answer); its message says why."""


def call(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One request to the provider; returns the decoded JSON object."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        settings.SHOP_PROVIDER_URL.rstrip("/") + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            payload = json.load(response)
    except urllib.error.HTTPError as exc:
        with exc:
            detail = exc.read().decode(errors="replace")
        with contextlib.suppress(ValueError, AttributeError):
            detail = str(json.loads(detail).get("error", detail))
        if 400 <= exc.code < 500:
            raise ProviderRejected(detail) from None
        raise ConnectionError(f"provider answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, TimeoutError) as exc:
        raise ConnectionError(f"provider unreachable: {exc}") from None
    if not isinstance(payload, dict):
        raise ConnectionError(f"provider answered {type(payload).__name__}, not an object")
    return payload
