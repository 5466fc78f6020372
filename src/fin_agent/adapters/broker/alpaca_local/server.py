"""`LocalAlpacaServer`: Alpaca's trading REST v2 and `trade_updates` stream over a `LocalBook`.

REST: `/v2/account`, `/v2/clock`, `/v2/orders` (POST, GET, DELETE, PATCH by id,
`:by_client_order_id`), `/v2/positions` (GET, DELETE), authenticated by the `APCA-API-KEY-ID`
and `APCA-API-SECRET-KEY` headers. Stream: `/stream`, authenticate then listen, binary frames as
the paper endpoint sends. Control (not Alpaca's): `/_local/bars`, `/_local/session_end`,
`/_local/assets`, `/_local/liquidity`, `/_local/drop_streams` and `/_local/counts` (order
submissions received by client order id, trade updates by event, and every `/v2/` and `/v1/`
call counted by arrival: the most in any 60 s, by path), for tests and the demo.
Market data over a `SimulatedUniverse` (`universe=`): `/v2/assets`, `/v2/stocks/snapshots`,
`/v2/stocks/bars` and `/v1/corporate-actions` (splits only; the data API's paths: point the data
base URL at this server too). With
`rate_limit_per_min`, a call arriving past that many in the last 60 s is answered 429, as Alpaca.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, deque
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from fin_agent.adapters.broker.alpaca_local.book import LocalBook, Update
from fin_agent.adapters.broker.alpaca_local.market_data import SimulatedUniverse
from fin_agent.adapters.broker.alpaca_local.records import money, rfc3339
from fin_agent.adapters.broker.alpaca_local.requests import LocalApiError, parse_order
from fin_agent.domain.values import Bar, Symbol

log = structlog.get_logger(__name__)
UNAUTHORIZED = {"code": 40110000, "message": "request is not authorized"}


class LocalAlpacaServer:
    """Serve one local account on `host:port` (port 0: any free port)."""

    def __init__(
        self,
        book: LocalBook,
        *,
        key_id: str = "local-key",
        secret_key: str = "local-secret",  # noqa: S107 - the local server's well-known default
        host: str = "127.0.0.1",
        port: int = 0,
        universe: SimulatedUniverse | None = None,
        rate_limit_per_min: int | None = None,
    ) -> None:
        self.book = book
        self.universe = universe
        self._rate_limit = rate_limit_per_min
        self._arrivals: deque[float] = deque()
        self.calls: Counter[str] = Counter()
        self.max_calls_per_60s = 0
        self.rate_limited = 0
        self._key_id = key_id
        self._secret = secret_key
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._queues: dict[web.WebSocketResponse, asyncio.Queue[Update]] = {}
        self.connections = 0
        self.refuse_streams = False
        """While set, `/stream` answers 503 (an outage, for reconnect tests)."""
        book.listeners.append(self._broadcast)

    @property
    def base_url(self) -> str:
        """The REST base URL (without `/v2`)."""
        return f"http://{self._host}:{self._port}"

    @property
    def stream_url(self) -> str:
        """The `trade_updates` WebSocket URL."""
        return f"ws://{self._host}:{self._port}/stream"

    async def start(self) -> None:
        """Listen; the port is known once this returns (a universe's calendar is loaded first)."""
        if self.universe is not None:
            _ = self.universe.sessions
        app = web.Application(middlewares=[self._errors])
        app.router.add_get("/stream", self._stream)
        app.router.add_get("/v2/account", self._account)
        app.router.add_get("/v2/clock", self._clock)
        app.router.add_post("/v2/orders", self._submit)
        app.router.add_get("/v2/orders", self._orders)
        app.router.add_delete("/v2/orders", self._cancel_all)
        app.router.add_get("/v2/orders:by_client_order_id", self._by_client_id)
        app.router.add_get("/v2/orders/{order_id}", self._order)
        app.router.add_delete("/v2/orders/{order_id}", self._cancel)
        app.router.add_patch("/v2/orders/{order_id}", self._replace)
        app.router.add_get("/v2/positions", self._positions)
        app.router.add_delete("/v2/positions", self._close_all)
        app.router.add_get("/v2/positions/{symbol}", self._position)
        app.router.add_delete("/v2/positions/{symbol}", self._close)
        app.router.add_get("/v2/assets", self._list_assets)
        app.router.add_get("/v2/stocks/snapshots", self._snapshots)
        app.router.add_get("/v2/stocks/bars", self._daily_bars)
        app.router.add_get("/v1/corporate-actions", self._corporate_actions)
        app.router.add_post("/_local/bars", self._bars)
        app.router.add_post("/_local/session_end", self._session_end)
        app.router.add_post("/_local/assets", self._assets)
        app.router.add_post("/_local/liquidity", self._liquidity)
        app.router.add_post("/_local/drop_streams", self._drop)
        app.router.add_get("/_local/counts", self._counts)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server
        if self._port == 0 and server is not None:
            sockets = getattr(server, "sockets", None) or []
            self._port = sockets[0].getsockname()[1]
        log.info("alpaca_local_listening", url=self.base_url)

    async def stop(self) -> None:
        """Close every stream and stop listening."""
        await self.drop_streams()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def drop_streams(self) -> int:
        """Close every `trade_updates` connection (a network drop, for reconnect tests)."""
        sockets = list(self._sockets)
        for ws in sockets:
            await ws.close()
        return len(sockets)

    # -- plumbing ------------------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(("/v2/", "/v1/")):
            if self._over_limit(request.path):
                return web.json_response({"message": "too many requests"}, status=429)
            if not self._authorized(request.headers):
                return web.json_response(UNAUTHORIZED, status=401)
        try:
            response: web.StreamResponse = await handler(request)
        except LocalApiError as error:
            return web.json_response(error.body(), status=error.status)
        return response

    def _over_limit(self, path: str) -> bool:
        """Count a call by its arrival; True when it is one too many for the limit."""
        now = time.monotonic()
        arrivals = self._arrivals
        arrivals.append(now)
        while arrivals[0] <= now - 60.0:
            arrivals.popleft()
        self.calls[path] += 1
        self.max_calls_per_60s = max(self.max_calls_per_60s, len(arrivals))
        if self._rate_limit is not None and len(arrivals) > self._rate_limit:
            self.rate_limited += 1
            return True
        return False

    def _authorized(self, headers: Any) -> bool:
        return bool(
            headers.get("APCA-API-KEY-ID") == self._key_id
            and headers.get("APCA-API-SECRET-KEY") == self._secret
        )

    def _broadcast(self, update: Update) -> None:
        for queue in self._queues.values():
            queue.put_nowait(update)

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        if self.refuse_streams:
            return web.Response(status=503, text="stream unavailable")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        self._sockets.add(ws)
        sender: asyncio.Task[None] | None = None
        try:
            async for message in ws:
                if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                body = json.loads(message.data)
                action = body.get("action")
                data = body.get("data") or {}
                if action in ("authenticate", "auth"):
                    key = data.get("key_id", body.get("key"))
                    secret = data.get("secret_key", body.get("secret"))
                    ok = key == self._key_id and secret == self._secret
                    status = "authorized" if ok else "unauthorized"
                    await _send(ws, {"stream": "authorization", "data": {
                        "status": status, "action": "authenticate"}})  # fmt: skip
                    if not ok:
                        break
                    self._queues[ws] = asyncio.Queue()
                elif action == "listen" and ws in self._queues:
                    streams = [s for s in data.get("streams", []) if s == "trade_updates"]
                    await _send(ws, {"stream": "listening", "data": {"streams": streams}})
                    if streams and sender is None:
                        sender = asyncio.create_task(_pump(ws, self._queues[ws]))
                else:
                    await _send(ws, {"stream": "authorization", "data": {
                        "status": "unauthorized", "action": str(action)}})  # fmt: skip
                    break
        finally:
            self._queues.pop(ws, None)
            self._sockets.discard(ws)
            if sender is not None:
                sender.cancel()
            await ws.close()
        return ws

    # -- REST ----------------------------------------------------------------------------------

    async def _account(self, request: web.Request) -> web.Response:
        book = self.book
        equity = book.equity()
        longs = sum((p.qty * book.last.get(s, p.avg_entry) for s, p in book.positions.items()
                     if p.qty > 0), Decimal(0))  # fmt: skip
        shorts = sum((p.qty * book.last.get(s, p.avg_entry) for s, p in book.positions.items()
                      if p.qty < 0), Decimal(0))  # fmt: skip
        return web.json_response({
            "id": "00000000-0000-4000-8000-000000000001", "account_number": "PALOCAL01",
            "status": "ACTIVE", "crypto_status": "ACTIVE", "currency": "USD",
            "buying_power": money(book.buying_power()),
            "regt_buying_power": money(book.buying_power()),
            "daytrading_buying_power": money(book.buying_power()),
            "non_marginable_buying_power": money(book.cash),
            "cash": money(book.cash), "accrued_fees": "0", "portfolio_value": money(equity),
            "pattern_day_trader": False, "trading_blocked": False, "transfers_blocked": False,
            "account_blocked": False, "created_at": "2024-01-02T14:30:00Z",
            "trade_suspended_by_user": False, "multiplier": money(book.multiplier),
            "shorting_enabled": True, "equity": money(equity), "last_equity": money(equity),
            "long_market_value": money(longs), "short_market_value": money(shorts),
            "initial_margin": "0", "maintenance_margin": "0", "last_maintenance_margin": "0",
            "sma": "0", "daytrade_count": 0,
        })  # fmt: skip

    async def _clock(self, request: web.Request) -> web.Response:
        now = self.book.now or datetime.now(UTC)
        day = now.date()
        opens = datetime(day.year, day.month, day.day, 14, 30, tzinfo=UTC)
        closes = opens + timedelta(hours=6, minutes=30)
        is_open = now.weekday() < 5 and opens <= now < closes
        next_open = opens if now < opens else opens + timedelta(days=1)
        return web.json_response({
            "timestamp": rfc3339(now), "is_open": is_open,
            "next_open": rfc3339(next_open),
            "next_close": rfc3339(closes if now < closes else closes + timedelta(days=1)),
        })  # fmt: skip

    async def _submit(self, request: web.Request) -> web.Response:
        order = self.book.submit(parse_order(await request.json()))
        return web.json_response(self.book.wire(order))

    async def _orders(self, request: web.Request) -> web.Response:
        status = request.query.get("status", "open")
        symbols = {s for s in request.query.get("symbols", "").split(",") if s}
        limit = int(request.query.get("limit", "50"))
        nested = request.query.get("nested", "false").lower() == "true"
        book = self.book
        chosen = [
            o
            for o in reversed(list(book.orders.values()))
            if (status == "all" or (status == "open") == o.is_open)
            and (not symbols or o.symbol in symbols)
            and (not nested or o.parent_id is None)
        ][:limit]
        return web.json_response([book.wire(o) if nested else o.wire() for o in chosen])

    async def _order(self, request: web.Request) -> web.Response:
        return web.json_response(self.book.wire(self.book.get(request.match_info["order_id"])))

    async def _by_client_id(self, request: web.Request) -> web.Response:
        order = self.book.get_by_client_id(request.query.get("client_order_id", ""))
        return web.json_response(self.book.wire(order))

    async def _cancel(self, request: web.Request) -> web.Response:
        self.book.cancel(request.match_info["order_id"])
        return web.Response(status=204)

    async def _cancel_all(self, request: web.Request) -> web.Response:
        answers = []
        for order in list(self.book.orders.values()):
            if order.is_open and order.parent_id is None:
                self.book.cancel(order.id)
                answers.append({"id": order.id, "status": 200, "body": None})
        return web.json_response(answers, status=207)

    async def _replace(self, request: web.Request) -> web.Response:
        new = self.book.replace(request.match_info["order_id"], await request.json())
        return web.json_response(self.book.wire(new))

    async def _positions(self, request: web.Request) -> web.Response:
        book = self.book
        return web.json_response([
            p.wire(book.last.get(s, p.avg_entry), book.held_for_orders(s))
            for s, p in book.positions.items()
        ])  # fmt: skip

    async def _position(self, request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"].upper()
        position = self.book.positions.get(symbol)
        if position is None:
            raise LocalApiError(404, 40410000, "position does not exist")
        last = self.book.last.get(symbol, position.avg_entry)
        return web.json_response(position.wire(last, self.book.held_for_orders(symbol)))

    async def _close(self, request: web.Request) -> web.Response:
        qty = request.query.get("qty")
        order = self.book.close_position(
            request.match_info["symbol"].upper(), int(Decimal(qty)) if qty else None
        )
        return web.json_response(self.book.wire(order))

    async def _close_all(self, request: web.Request) -> web.Response:
        if request.query.get("cancel_orders", "false").lower() == "true":
            for order in list(self.book.orders.values()):
                if order.is_open and order.parent_id is None:
                    self.book.cancel(order.id)
        answers: list[dict[str, Any]] = []
        for symbol in list(self.book.positions):
            try:
                order = self.book.close_position(symbol)
                answers.append({"symbol": symbol, "status": 200, "body": self.book.wire(order)})
            except LocalApiError as error:
                answers.append({"symbol": symbol, "status": error.status, "body": error.body()})
        return web.json_response(answers, status=207)

    # -- control -------------------------------------------------------------------------------

    async def _bars(self, request: web.Request) -> web.Response:
        body = await request.json()
        bars = [_bar(b) for b in body.get("bars", [])]
        seq = self.book.on_bars(bars)
        return web.json_response({"seq": seq})

    async def _session_end(self, request: web.Request) -> web.Response:
        body = await request.json()
        seq = self.book.session_end(datetime.fromisoformat(body["at"]))
        return web.json_response({"seq": seq})

    async def _assets(self, request: web.Request) -> web.Response:
        body = await request.json()
        symbol = str(body["symbol"]).upper()
        for flag, names in (("tradable", self.book.not_tradable),
                            ("shortable", self.book.not_shortable)):  # fmt: skip
            if flag in body:
                (names.discard if body[flag] else names.add)(symbol)
        return web.json_response({"symbol": symbol})

    async def _liquidity(self, request: web.Request) -> web.Response:
        body = await request.json()
        symbol = str(body["symbol"]).upper()
        cap = body.get("max_qty_per_bar")
        if cap is None:
            self.book.max_qty_per_bar.pop(symbol, None)
        else:
            self.book.max_qty_per_bar[symbol] = int(cap)
        return web.json_response({"symbol": symbol, "max_qty_per_bar": cap})

    async def _drop(self, request: web.Request) -> web.Response:
        return web.json_response({"dropped": await self.drop_streams()})

    async def _counts(self, request: web.Request) -> web.Response:
        events = Counter(str(u["data"]["event"]) for u in self.book.updates)
        return web.json_response({
            "submissions": self.book.submissions, "updates": events,
            "calls": dict(self.calls), "calls_total": sum(self.calls.values()),
            "max_calls_per_60s": self.max_calls_per_60s, "rate_limited": self.rate_limited,
        })  # fmt: skip

    # -- market data ---------------------------------------------------------------------------

    def _market(self) -> SimulatedUniverse:
        if self.universe is None:
            raise LocalApiError(404, 40410000, "no market data: start the server with --universe N")
        return self.universe

    async def _list_assets(self, request: web.Request) -> web.Response:
        status = request.query.get("status")
        assets = [a for a in self._market().assets() if status in (None, a["status"])]
        return web.json_response(assets)

    async def _snapshots(self, request: web.Request) -> web.Response:
        market = self._market()
        answer = {}
        for name in _symbols(request):
            snapshot = market.snapshot(name)
            if snapshot is not None:
                answer[name] = snapshot
        return web.json_response(answer)

    async def _daily_bars(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("timeframe") not in ("1Day", "1D"):
            raise LocalApiError(422, 42210000, "the local server serves timeframe=1Day only")
        start = datetime.fromisoformat(query["start"][:10]).date()
        end = datetime.fromisoformat(query.get("end", query["start"])[:10]).date()
        limit = min(int(query.get("limit", "1000")), 10_000)
        offset = int(query.get("page_token") or 0)
        market = self._market()
        rows = [(s, b) for s in sorted(_symbols(request)) for b in market.bars(s, start, end)]
        page = rows[offset : offset + limit]
        bars: dict[str, list[dict[str, Any]]] = {}
        for name, bar in page:
            bars.setdefault(name, []).append(bar)
        token = str(offset + limit) if offset + limit < len(rows) else None
        return web.json_response({"bars": bars, "next_page_token": token, "currency": "USD"})

    async def _corporate_actions(self, request: web.Request) -> web.Response:
        query = request.query
        types = set(query.get("types", "forward_split,reverse_split").split(","))
        if not types <= {"forward_split", "reverse_split"}:
            raise LocalApiError(422, 42210000, "the local server serves split actions only")
        market = self._market()
        start = datetime.fromisoformat(query.get("start", str(market.day))[:10]).date()
        end = datetime.fromisoformat(query.get("end", str(market.day))[:10]).date()
        actions = market.corporate_actions(start, end)
        wanted = {s for s in query.get("symbols", "").split(",") if s}
        kept = {
            kind: [a for a in rows if not wanted or a["symbol"] in wanted]
            for kind, rows in actions.items()
            if kind.removesuffix("s") in types
        }
        return web.json_response({"corporate_actions": kept, "next_page_token": None})


def _symbols(request: web.Request) -> list[str]:
    names = [s for s in request.query.get("symbols", "").split(",") if s]
    if not names:
        raise LocalApiError(400, 40010001, "symbols is required")
    return names


def bar_json(bar: Bar) -> dict[str, Any]:
    """A bar as `/_local/bars` takes it."""
    return {
        "symbol": str(bar.symbol), "start": bar.start.isoformat(), "open": str(bar.open),
        "high": str(bar.high), "low": str(bar.low), "close": str(bar.close),
        "volume": bar.volume, "interval_secs": bar.interval_secs,
    }  # fmt: skip


def _bar(body: dict[str, Any]) -> Bar:
    return Bar(
        symbol=Symbol(str(body["symbol"])),
        start=datetime.fromisoformat(body["start"]).astimezone(UTC),
        open=Decimal(body["open"]),
        high=Decimal(body["high"]),
        low=Decimal(body["low"]),
        close=Decimal(body["close"]),
        volume=int(body["volume"]),
        interval_secs=int(body.get("interval_secs", 60)),
    )


async def _send(ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
    await ws.send_bytes(json.dumps(message).encode())


async def _pump(ws: web.WebSocketResponse, queue: asyncio.Queue[Update]) -> None:
    while not ws.closed:
        update = await queue.get()
        await _send(ws, update)
