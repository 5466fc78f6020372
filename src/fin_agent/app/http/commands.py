"""`POST /api/commands` and `GET /api/commands/{id}`: operator commands over HTTP.

The body is `{"command": "halt"|"resume"|"flatten"|"cancel", "reason": "...", "symbol"?,
"plan_id"?, "source"?, "issued_by"?}` and the `Idempotency-Key` header is the command id: the same
key twice is one command. The answer is 202 with the command id (the day decides it at its next
decision point); `GET /api/commands/{id}` says whether it was applied or refused, and why.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from fin_agent.app.day.commands import CommandRequest, OperatorDesk
from fin_agent.domain.events import CommandKind

KEY_HEADER = "Idempotency-Key"
KEY_PATTERN = re.compile(r"^[A-Za-z0-9._:@-]{1,100}$")
KEYS = ("command", "reason", "symbol", "plan_id", "source", "issued_by")
SYMBOL_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9.\-]{0,9}$")
MAX_TEXT = 300


def _bad(text: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=text)


def _text(body: dict[str, Any], key: str, limit: int = MAX_TEXT) -> str:
    value = body.get(key, "")
    if not isinstance(value, str):
        raise _bad(f"{key} must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise _bad(f"{key} is {len(value)} characters: at most {limit}")
    return value.strip()


def parse_request(key: str | None, raw: bytes) -> CommandRequest:
    """The command a request asks for; `HTTPBadRequest` naming the fix otherwise."""
    if key is None or not KEY_PATTERN.match(key):
        raise _bad(
            f"send an {KEY_HEADER} header: the command id, 1 to 100 letters, digits or ._:@- "
            "(a UUID, say); the same id twice is one command"
        )
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise _bad('the body is not JSON: send {"command": "halt", "reason": "..."}') from None
    if not isinstance(body, dict):
        raise _bad('the body must be a JSON object such as {"command": "halt", "reason": "..."}')
    unknown = sorted(set(body) - set(KEYS))
    if unknown:
        raise _bad(f"unknown keys {', '.join(unknown)}: allowed keys are {', '.join(KEYS)}")
    text = _text(body, "command")
    choices = ", ".join(k.value for k in CommandKind)
    try:
        kind = CommandKind(text)
    except ValueError:
        raise _bad(f"command {text!r} is not one of {choices}") from None
    reason, symbol, plan_id = _text(body, "reason"), _text(body, "symbol"), _text(body, "plan_id")
    if kind is CommandKind.HALT and not reason:
        raise _bad('a halt needs a reason: say why in "reason" (it is shown and notified)')
    if symbol and kind is not CommandKind.FLATTEN:
        raise _bad(f"symbol is for flatten only, not {kind}")
    if symbol and not SYMBOL_PATTERN.match(symbol):
        raise _bad(f"symbol {symbol!r} is not a ticker such as AAPL or BRK.B")
    if kind is CommandKind.CANCEL and not plan_id:
        raise _bad('cancel needs the plan to cancel: "plan_id" (see the dashboard\'s Plans page)')
    if plan_id and kind is not CommandKind.CANCEL:
        raise _bad(f"plan_id is for cancel only, not {kind}")
    return CommandRequest(
        command_id=key,
        kind=kind,
        reason=reason,
        symbol=symbol.upper(),
        plan_id=plan_id,
        source=_text(body, "source", 40) or "http",
        issued_by=_text(body, "issued_by", 80),
    )


def command_routes(desk: OperatorDesk) -> list[web.RouteDef]:
    """The routes of operator commands, served by `desk`."""

    async def post(request: web.Request) -> web.Response:
        command = parse_request(request.headers.get(KEY_HEADER), await request.read())
        issued, new = await desk.issue(command)
        body = {
            "command_id": issued.command_id,
            "kind": str(issued.kind),
            "status": "accepted" if new else "duplicate",
            "trading_day": issued.trading_day.isoformat(),
        }
        return web.json_response(body, status=202)

    async def get(request: web.Request) -> web.Response:
        key = request.match_info["command_id"]
        if not KEY_PATTERN.match(key):
            raise _bad("a command id is 1 to 100 letters, digits or ._:@-")
        return web.json_response(dict(await desk.outcome(key)))

    return [web.post("/api/commands", post), web.get("/api/commands/{command_id}", get)]
