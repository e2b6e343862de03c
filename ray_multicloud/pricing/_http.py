"""The one HTTP helper the REST price feeds share: GET a URL, return its JSON object (stdlib only).

A reply that is not a JSON object (an HTML error page from a proxy or a wrong endpoint, a JSON
list, NaN or Infinity, nesting too deep) raises ``OSError`` saying so, with the URL without its
query and the reply's first characters; never the request's headers (a token).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

GetJson = Callable[[str, Mapping[str, str]], Any]


def parse_json_object(body: bytes, where: str, content_type: str = "") -> dict[str, Any]:
    """``body`` as a JSON object, or ``OSError`` naming ``where`` and what the body was instead."""

    def no_constants(token: str) -> Any:
        raise ValueError(f"{token} is not a number JSON allows")

    start = body[:80].decode(errors="replace").strip()
    kind = f" ({content_type})" if content_type else ""
    try:
        doc = json.loads(body, parse_constant=no_constants)
    except (ValueError, RecursionError) as exc:
        raise OSError(f"{where}: the reply{kind} is not JSON ({exc}); it starts {start!r}: check the "
                      "endpoint (an error page from a proxy, or not the price API?)") from None
    if not isinstance(doc, dict):
        raise OSError(f"{where}: the reply is a JSON {type(doc).__name__}, not the price API's object; "
                      f"it starts {start!r}: check the endpoint")
    return doc


def urllib_get_json(timeout_s: float = 15.0) -> GetJson:
    def get(url: str, headers: Mapping[str, str]) -> Any:
        request = urllib.request.Request(url, headers={"Accept": "application/json", **headers})
        where = url.split("?", 1)[0]
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as reply:
                return parse_json_object(reply.read(), where, reply.headers.get("Content-Type", ""))
        except urllib.error.HTTPError as exc:
            # The status and the API's own message only: never the request's headers (a token).
            detail = exc.read()[:300].decode(errors="replace")
            raise OSError(f"HTTP {exc.code} from {where}: {detail}") from None

    return get
