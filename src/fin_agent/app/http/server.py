"""The agent's HTTP server: `/healthz`, `/readyz` and the read models as JSON under `/api/`.

`/healthz` answers while the process and its event loop do. `/readyz` checks each dependency and
answers 503 with a reason per failing check; a flood of probes shares one check (`Readiness`).
Bound to localhost unless `http.host` says otherwise. The dashboard reads everything it shows
from here: besides the read models (a day's candles at `/api/day/DAY/candles?width=5m&symbol=SYM`
among them), the event log, the dead-letter stream, the effective config (secrets masked) and
the next scheduled runs.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import structlog
from aiohttp import web

from fin_agent.app.day.commands import OperatorDesk
from fin_agent.app.http.commands import command_routes
from fin_agent.app.http.news_model import day_news
from fin_agent.app.http.read_models import ReadModels, jsonable
from fin_agent.app.http.readiness import CHECK_TIMEOUT_SECS, Readiness
from fin_agent.app.http.readiness import Check as Check  # re-exported: checks are built with it
from fin_agent.app.observability.metrics import CONTENT_TYPE, Metrics
from fin_agent.domain.errors import FinAgentError
from fin_agent.ports.bus_admin import DeadLetters
from fin_agent.ports.store import CandleWidth, Store

log = structlog.get_logger(__name__)

DeadLetterSource = Callable[[int], Awaitable[Mapping[str, object]]]
"""The dead-letter stream: given a limit, `{"count": n, "letters": [oldest first]}`."""

ScheduleRuns = Sequence[Mapping[str, object]]
ScheduleSource = Callable[[], ScheduleRuns | Awaitable[ScheduleRuns]]
"""The next scheduled runs, soonest first, each a JSON-ready mapping (job, at, reason, ...)."""

MAX_LIMIT = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpDeps:
    """What the HTTP server reads: the read models and the readiness checks by name.

    The optional sources feed the dashboard's operations pages; each page says "not available"
    when its source is None (a memory bus has no dead-letter stream, say).
    """

    read_models: ReadModels
    checks: Mapping[str, Check]
    info: Mapping[str, object]
    metrics: Metrics | None = None
    effective_config: Callable[[], str] | None = None
    dead_letters: DeadLetterSource | None = None
    schedule: ScheduleSource | None = None
    config_version: Callable[[], str] | None = None
    commands: OperatorDesk | None = None
    """Operator commands (`POST /api/commands`); None: this server takes none."""
    research: Callable[[], Sequence[Mapping[str, object]]] | None = None
    """The optimiser's study summaries (the Research page); None: not available."""
    api_token: str | None = field(default=None, repr=False)
    """The bearer token `/api/*` and `/metrics` require (None: open, on a loopback address)."""


def dead_letters_source(letters: DeadLetters) -> DeadLetterSource:
    """The dead letters of a durable bus as the dashboard reads them (original fields included)."""

    async def read(limit: int) -> Mapping[str, object]:
        rows = await letters.oldest(limit)
        return {
            "count": await letters.count(),
            "letters": [
                {
                    "id": r.id,
                    "event_type": r.event_type,
                    "reason": r.reason,
                    "detail": r.detail,
                    "stream": r.stream,
                    "entry_id": r.entry_id,
                    "group": r.group,
                    "deliveries": r.deliveries,
                    "fields": dict(r.fields),
                }
                for r in rows
            ],
        }

    return read


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


def _limit(request: web.Request, default: int) -> int:
    text = request.query.get("limit", str(default))
    if not text.isdigit() or not 0 < int(text) <= MAX_LIMIT:
        raise web.HTTPBadRequest(
            text=f"limit {text!r} must be a whole number from 1 to {MAX_LIMIT}"
        )
    return int(text)


def _types(request: web.Request, name: str) -> list[str] | None:
    text = request.query.get(name)
    return [t for t in (part.strip() for part in text.split(",")) if t] if text else None


def make_app(deps: HttpDeps) -> web.Application:
    """The aiohttp application with every route."""
    models = deps.read_models
    readiness = Readiness(deps.checks)

    async def healthz(_: web.Request) -> web.Response:
        return _json({"status": "alive"})

    def authorised(request: web.Request) -> bool:
        if deps.api_token is None:
            return True
        given = request.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        expected = deps.api_token.encode()
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected)

    @web.middleware
    async def guard(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        path = request.path
        if (path.startswith("/api/") or path == "/metrics") and not authorised(request):
            raise web.HTTPUnauthorized(
                text="this agent requires its API token: send the header "
                "'Authorization: Bearer <api_token>' (the api_token secret)",
                headers={"WWW-Authenticate": 'Bearer realm="fin-agent"'},
            )
        return await handler(request)

    async def readyz(request: web.Request) -> web.Response:
        results = await readiness.results()
        ready = all(r["ok"] for r in results.values())
        if not authorised(request):  # open to probes: whether, never why or what
            checks = {name: {"ok": r["ok"]} for name, r in results.items()}
            return _json({"ready": ready, "checks": checks}, 200 if ready else 503)
        version = {"config_version": deps.config_version()} if deps.config_version else {}
        body = {"ready": ready, "checks": results, **deps.info, **version}
        return _json(body, 200 if ready else 503)

    async def api_status(_: web.Request) -> web.Response:
        return _json(await models.status())

    async def api_days(_: web.Request) -> web.Response:
        return _json(await models.days())

    async def api_day(request: web.Request) -> web.Response:
        return _json(await models.day(_day(request)))

    async def api_candles(request: web.Request) -> web.Response:
        text = request.query.get("width", str(CandleWidth.M5))
        try:
            width = CandleWidth(text)
        except ValueError:
            choices = ", ".join(str(w) for w in CandleWidth)
            raise web.HTTPBadRequest(
                text=f"width {text!r} is not a candle width: use one of {choices}"
            ) from None
        symbol = request.query.get("symbol") or None
        return _json(await models.candles(_day(request), width, symbol))

    async def api_equity(_: web.Request) -> web.Response:
        return _json(await models.equity_curve())

    async def api_errors(request: web.Request) -> web.Response:
        return _json(await models.errors(_limit(request, 50)))

    async def api_events(request: web.Request) -> web.Response:
        text = request.query.get("day")
        day = None
        if text:
            try:
                day = date.fromisoformat(text)
            except ValueError:
                raise web.HTTPBadRequest(text=f"{text!r} is not a date: use YYYY-MM-DD") from None
        types, limit = _types(request, "types"), _limit(request, 200)
        if "exclude" in request.query:  # `exclude=` (empty) shows the minute bars too
            exclude = _types(request, "exclude") or []
            return _json(await models.events(day, types=types, exclude=exclude, limit=limit))
        return _json(await models.events(day, types=types, limit=limit))

    async def api_news(request: web.Request) -> web.Response:
        every = request.query.get("all", "") in ("1", "true")
        news = await day_news(
            models.store, _day(request), limit=_limit(request, 100), every_symbol=every
        )
        return _json(news)

    async def api_dead_letters(request: web.Request) -> web.Response:
        limit = _limit(request, 100)
        if deps.dead_letters is None:
            reason = "this agent's bus has no dead-letter stream (the in-memory bus)"
            return _json({"available": False, "reason": reason, "count": 0, "letters": []})
        try:
            letters = await asyncio.wait_for(deps.dead_letters(limit), CHECK_TIMEOUT_SECS)
        except Exception as exc:  # Redis down or slow: say so and keep serving
            why = (
                f"no answer in {CHECK_TIMEOUT_SECS:.0f} s" if isinstance(exc, TimeoutError) else exc
            )
            reason = f"the dead-letter stream cannot be read: {why}"
            return _json({"available": False, "reason": reason, "count": 0, "letters": []}, 503)
        return _json({"available": True, **letters})

    async def api_config(_: web.Request) -> web.Response:
        if deps.effective_config is None:
            return _json({"available": False, "yaml": None})
        return _json({"available": True, "yaml": deps.effective_config()})

    async def api_research(_: web.Request) -> web.Response:
        if deps.research is None:
            return _json({"available": False, "studies": []})
        return _json({"available": True, "studies": list(deps.research())})

    async def api_schedule(request: web.Request) -> web.Response:
        limit = _limit(request, 10)
        if deps.schedule is None:
            return _json({"available": False, "runs": []})
        try:
            runs = deps.schedule()
            if inspect.isawaitable(runs):
                runs = await runs
        except FinAgentError as exc:  # a calendar that ends too soon, say: show why
            return _json({"available": False, "reason": str(exc), "runs": []})
        return _json({"available": True, "runs": [dict(r) for r in list(runs)[:limit]]})

    async def metrics(_: web.Request) -> web.Response:
        if deps.metrics is None:
            raise web.HTTPNotFound(text="metrics are not enabled in this process")
        return web.Response(
            body=await deps.metrics.render(), headers={"Content-Type": CONTENT_TYPE}
        )

    app = web.Application(middlewares=[guard])
    if deps.commands is not None:
        app.add_routes(command_routes(deps.commands))
    app.add_routes(
        [
            web.get("/healthz", healthz),
            web.get("/metrics", metrics),
            web.get("/readyz", readyz),
            web.get("/api/status", api_status),
            web.get("/api/days", api_days),
            web.get("/api/day/{day}", api_day),
            web.get("/api/day/{day}/candles", api_candles),
            web.get("/api/equity", api_equity),
            web.get("/api/errors", api_errors),
            web.get("/api/events", api_events),
            web.get("/api/dead-letters", api_dead_letters),
            web.get("/api/config", api_config),
            web.get("/api/schedule", api_schedule),
            web.get("/api/research", api_research),
            web.get("/api/news/{day}", api_news),
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
