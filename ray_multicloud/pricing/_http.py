"""The one HTTP helper the REST price feeds share: GET a URL, return its JSON (stdlib only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

GetJson = Callable[[str, Mapping[str, str]], Any]


def urllib_get_json(timeout_s: float = 15.0) -> GetJson:
    def get(url: str, headers: Mapping[str, str]) -> Any:
        request = urllib.request.Request(url, headers={"Accept": "application/json", **headers})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as reply:
                return json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            # The status and the API's own message only: never the request's headers (a token).
            detail = exc.read()[:300].decode(errors="replace")
            raise OSError(f"HTTP {exc.code} from {url.split('?', 1)[0]}: {detail}") from None

    return get
