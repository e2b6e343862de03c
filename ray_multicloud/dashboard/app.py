"""The dashboard: a small read-only aiohttp app served from the head (aiohttp comes with ``ray[default]``).

Routes (all GET; any other method is 405):

* ``/``: the page (``static/index.html``), which polls the JSON endpoints below every few seconds;
* ``/static/*``: its script and style sheet (code only, no data: served without the token);
* ``/api/fleet``: the machines on every cloud now (``fleet.collect_status``: the drivers' ``list``,
  the offer book's prices, the GCS's node states), cached ``fleet_ttl_s`` so many open pages do
  not multiply the clouds' API calls;
* ``/api/decisions``, ``/api/timeline``, ``/api/spend``: the ledger (``ledger_view``), read-only.

**Token.** Every route but ``/static/*`` needs the token, as ``Authorization: Bearer <token>`` or
``?token=<token>``; anything else is answered 401 (compared in constant time). The page takes the
token from its own URL and sends it as a header on its API calls. ``resolve_token`` reads or
writes the token file (``<state_dir>/dashboard.token``, mode 0600) when none is given.

The app only reads: it never launches, terminates, tags, or writes the ledger.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from ray_multicloud.errors import MultiCloudError

STATIC = Path(__file__).resolve().parent / "static"
TOKEN_FILE = "dashboard.token"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def resolve_token(state_dir: str | Path, given: str | None = None) -> tuple[str, Path | None]:
    """The dashboard's token and the file it is kept in (None when ``given``).

    With no token given, the one in ``<state_dir>/dashboard.token`` is used, or a new random one
    (32 bytes, URL-safe) is written there, readable by its owner only.
    """
    if given:
        return given, None
    path = Path(state_dir).expanduser() / TOKEN_FILE
    if path.is_file():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token, path
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token, path


@dataclass
class _Cached:
    ttl_s: float
    value: Any = None
    at: float = float("-inf")
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, compute: Callable[[], Any], now: float) -> Any:
        with self.lock:
            if self.value is None or now - self.at >= self.ttl_s:
                self.value = compute()
                self.at = now
            return self.value


class DashboardSource:
    """Where the dashboard's figures come from: a fleet reader and a ledger path.

    ``fleet``: () -> ``FleetStatus.as_json()``-shaped dict (the CLI passes ``collect_status`` over
    the cluster YAML; a test passes one over its fakes). ``ledger_path``: the ledger file, or None
    (the ledger panels then say so). Reads are cached: the fleet ``fleet_ttl_s``, the ledger
    ``ledger_ttl_s``.
    """

    def __init__(
        self,
        cluster: str,
        fleet: Callable[[], Mapping[str, Any]],
        ledger_path: str | None,
        *,
        fleet_ttl_s: float = 15.0,
        ledger_ttl_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cluster = cluster
        self._fleet = fleet
        self.ledger_path = ledger_path
        self._clock = clock
        self._fleet_cache = _Cached(fleet_ttl_s)
        self._ledger_cache = _Cached(ledger_ttl_s)

    def fleet(self) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            try:
                return dict(self._fleet())
            except MultiCloudError as exc:
                return {"cluster": self.cluster, "at": self._clock(), "nodes": [], "clouds": [],
                        "problems": [str(exc)]}
        out: dict[str, Any] = self._fleet_cache.get(read, self._clock())
        return out

    def ledger(self) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            from ray_multicloud.dashboard.ledger_view import LedgerView

            now = self._clock()
            empty: dict[str, Any] = {"at": now, "decisions": [], "timeline": {"lives": [], "moves": [],
                                     "preemptions": []}, "spend": [], "totals": {}, "problems": []}
            if not self.ledger_path:
                empty["problems"] = ["no ledger: set provider.ledger in the cluster YAML to record decisions"]
                return empty
            try:
                with LedgerView.open(self.ledger_path) as view:
                    snap = view.snapshot(cluster=self.cluster, now=now)
            except MultiCloudError as exc:
                empty["problems"] = [str(exc)]
                return empty
            snap["problems"] = []
            return snap
        out: dict[str, Any] = self._ledger_cache.get(read, self._clock())
        return out


def _token_of(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.query.get("token", "")


def make_app(source: DashboardSource, token: str, *, refresh_s: float = 5.0) -> web.Application:
    """The dashboard app over ``source``, answering only requests that carry ``token``."""
    if not token:
        raise ValueError("the dashboard needs a non-empty token")
    expected = token.encode()

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/static/"):
            return await handler(request)
        if not hmac.compare_digest(_token_of(request).encode(), expected):
            return web.json_response(
                {"error": "unauthorized: send the dashboard token as 'Authorization: Bearer <token>' "
                          "or ?token=<token> (ray-multicloud dashboard prints it; file: <state_dir>/"
                          f"{TOKEN_FILE})"},
                status=401, headers={"WWW-Authenticate": 'Bearer realm="ray-multicloud"'})
        response = await handler(request)
        response.headers["Cache-Control"] = "no-store"
        return response

    @web.middleware
    async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        # Everything the page needs is served from here: no other origin may be reached or frame it.
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; frame-ancestors 'none'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    async def blocking(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        return await asyncio.get_running_loop().run_in_executor(None, fn)

    async def index(_request: web.Request) -> web.StreamResponse:
        html = (STATIC / "index.html").read_text(encoding="utf-8")
        html = html.replace("{{cluster}}", _escape(source.cluster)).replace("{{refresh_ms}}",
                                                                           str(int(refresh_s * 1000)))
        return web.Response(text=html, content_type="text/html")

    async def fleet(_request: web.Request) -> web.StreamResponse:
        return web.json_response(await blocking(source.fleet))

    async def decisions(_request: web.Request) -> web.StreamResponse:
        snap = await blocking(source.ledger)
        return web.json_response({"at": snap["at"], "decisions": snap["decisions"],
                                  "problems": snap["problems"]})

    async def timeline(_request: web.Request) -> web.StreamResponse:
        snap = await blocking(source.ledger)
        return web.json_response({"at": snap["at"], **snap["timeline"], "problems": snap["problems"]})

    async def spend(_request: web.Request) -> web.StreamResponse:
        snap = await blocking(source.ledger)
        return web.json_response({"at": snap["at"], "series": snap["spend"], "totals": snap["totals"],
                                  "problems": snap["problems"]})

    app = web.Application(middlewares=[headers, guard])
    app.router.add_get("/", index)
    app.router.add_get("/api/fleet", fleet)
    app.router.add_get("/api/decisions", decisions)
    app.router.add_get("/api/timeline", timeline)
    app.router.add_get("/api/spend", spend)
    app.router.add_static("/static/", STATIC, show_index=False, follow_symlinks=False)
    return app


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def source_for_config(config: Mapping[str, Any], *, fleet_ttl_s: float = 15.0,
                      gcs_timeout_s: float = 5.0) -> DashboardSource:
    """The source the CLI serves: the cluster YAML's clouds (built once, through the registry), its
    ledger file, its GCS."""
    from ray_multicloud.clouds import make_clouds
    from ray_multicloud.cluster_config.provider_section import load_settings
    from ray_multicloud.dashboard.fleet import collect_status

    name = str(config.get("cluster_name", "default"))
    settings = load_settings(config.get("provider") or {}, name)
    clouds = make_clouds(settings.clouds, state_dir=str(settings.state_dir))
    from ray_multicloud.provider import OfferBook

    book = OfferBook(settings, clouds)

    def fleet() -> dict[str, Any]:
        return collect_status(config, clouds=clouds, gcs_timeout_s=gcs_timeout_s, book=book).as_json()

    return DashboardSource(name, fleet, settings.ledger_path, fleet_ttl_s=fleet_ttl_s)
