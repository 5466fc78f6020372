"""The agent's HTTP server: `/healthz`, `/readyz` and the read models as JSON under `/api/`.

`/healthz` answers while the process and its event loop do. `/readyz` checks each dependency and
answers 503 with a reason per failing check. Bound to localhost unless `http.host` says otherwise.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import structlog
from aiohttp import web

from fin_agent.app.metrics import CONTENT_TYPE, Metrics
from fin_agent.app.read_models import ReadModels, jsonable
from fin_agent.domain.errors import FinAgentError
from fin_agent.ports.store import Store

log = structlog.get_logger(__name__)

Check = Callable[[], Awaitable[str | None]]
"""A readiness check: returns None when fine, else the reason it is not."""

CHECK_TIMEOUT_SECS = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpDeps:
    """What the HTTP server reads: the read models and the readiness checks by name."""

    read_models: ReadModels
    checks: Mapping[str, Check]
    info: Mapping[str, object]
    metrics: Metrics | None = None


def store_check(store: Store) -> Check:
    """Readiness of the store: it answers a ping."""

    async def check() -> str | None:
        try:
            await store.ping()
        except FinAgentError as exc:
            return str(exc)
        return None

    return check


def _json(data: object, status: int = 200) -> web.Response:
    return web.json_response(jsonable(data), status=status, dumps=lambda d: json.dumps(d, indent=1))


def _day(request: web.Request) -> date:
    text = request.match_info["day"]
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{text!r} is not a date: use YYYY-MM-DD") from None


def make_app(deps: HttpDeps) -> web.Application:
    """The aiohttp application with every route."""
    models = deps.read_models

    async def healthz(_: web.Request) -> web.Response:
        return _json({"status": "alive"})

    async def readyz(_: web.Request) -> web.Response:
        results: dict[str, dict[str, Any]] = {}
        for name, check in deps.checks.items():
            try:
                reason = await asyncio.wait_for(check(), CHECK_TIMEOUT_SECS)
            except TimeoutError:
                reason = f"no answer in {CHECK_TIMEOUT_SECS:.0f} s"
            except Exception as exc:  # a broken check must say so, not break the probe
                reason = f"check failed: {exc!r}"
            results[name] = {"ok": reason is None, **({"reason": reason} if reason else {})}
        ready = all(r["ok"] for r in results.values())
        return _json({"ready": ready, "checks": results, **deps.info}, 200 if ready else 503)

    async def api_status(_: web.Request) -> web.Response:
        return _json(await models.status())

    async def api_days(_: web.Request) -> web.Response:
        return _json(await models.days())

    async def api_day(request: web.Request) -> web.Response:
        return _json(await models.day(_day(request)))

    async def api_equity(_: web.Request) -> web.Response:
        return _json(await models.equity_curve())

    async def api_errors(request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "50"))
        return _json(await models.errors(limit))

    async def metrics(_: web.Request) -> web.Response:
        if deps.metrics is None:
            raise web.HTTPNotFound(text="metrics are not enabled in this process")
        return web.Response(
            body=await deps.metrics.render(), headers={"Content-Type": CONTENT_TYPE}
        )

    app = web.Application()
    app.add_routes(
        [
            web.get("/healthz", healthz),
            web.get("/metrics", metrics),
            web.get("/readyz", readyz),
            web.get("/api/status", api_status),
            web.get("/api/days", api_days),
            web.get("/api/day/{day}", api_day),
            web.get("/api/equity", api_equity),
            web.get("/api/errors", api_errors),
        ]
    )
    return app


class HttpServer:
    """Runs the application on host:port inside the agent's event loop."""

    def __init__(self, deps: HttpDeps, host: str, port: int) -> None:
        self._app = make_app(deps)
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        """Listen; raises `OSError` if the port is taken."""
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        log.info("http_listening", url=self.url)

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
