"""`fin-agent ctl halt --reason TEXT | resume | flatten [SYMBOL] | cancel PLAN_ID`: operators.

The command goes to the running agent's API (`POST /api/commands`, with the `api_token` when one
is set), which publishes it on the agent's bus; the day decides it at its next decision point.
`ctl` then waits for the outcome and prints it: exit 0 applied, 1 refused, 2 the agent refused the
request or cannot be reached, 3 no outcome within `--timeout-secs`.
"""

from __future__ import annotations

import argparse
import getpass
import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any, TextIO

from fin_agent.app.config.settings import Settings

EXIT_APPLIED, EXIT_REFUSED, EXIT_REQUEST, EXIT_TIMEOUT = 0, 1, 2, 3
POLL_SECS = 0.25
ANY_ADDRESS = {"0.0.0.0", "::", ""}  # noqa: S104 - listening everywhere: connect locally


def add_ctl_parser(commands: Any) -> None:
    """The `ctl` subcommands."""
    ctl = commands.add_parser("ctl", help="operator commands to the running agent")
    ctl.add_argument("--agent-url", help="the agent's API (default: http.host and http.port)")
    ctl.add_argument("--id", dest="command_id", help="command id (default: a new UUID)")
    ctl.add_argument(
        "--timeout-secs", type=float, default=90.0, help="wait this long for the outcome"
    )
    kinds = ctl.add_subparsers(dest="ctl_command", required=True)
    halt = kinds.add_parser("halt", help="no new entries; open positions are still managed")
    halt.add_argument("--reason", required=True, help="why (shown and notified)")
    resume = kinds.add_parser("resume", help="lift an operator's halt")
    resume.add_argument("--reason", default="", help="why")
    flatten = kinds.add_parser("flatten", help="close every open position, or SYMBOL's")
    flatten.add_argument("symbol", nargs="?", default="", help="one symbol (default: all)")
    flatten.add_argument("--reason", default="", help="why")
    cancel = kinds.add_parser("cancel", help="cancel a plan that has not filled")
    cancel.add_argument("plan_id", help="the plan's id (the dashboard's Plans page)")
    cancel.add_argument("--reason", default="", help="why")


def agent_url(settings: Settings) -> str:
    """http://<http.host>:<http.port> (listening everywhere: 127.0.0.1)."""
    host = settings.http.host
    host = "127.0.0.1" if host in ANY_ADDRESS else host
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.http.port}"


def _call(
    url: str, token: str | None, body: dict[str, str] | None, key: str | None
) -> tuple[int, str]:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if key:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - http(s) only
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace").strip()


def ctl_command(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    """Send one command, wait for its outcome and print it."""
    base = (args.agent_url or agent_url(settings)).rstrip("/")
    token = settings.api_token.get_secret_value() if settings.api_token else None
    key = args.command_id or str(uuid.uuid4())
    body = {"command": args.ctl_command, "reason": args.reason, "source": "cli"}
    body["issued_by"] = getpass.getuser()
    if args.ctl_command == "flatten" and args.symbol:
        body["symbol"] = args.symbol
    if args.ctl_command == "cancel":
        body["plan_id"] = args.plan_id
    try:
        status, text = _call(f"{base}/api/commands", token, body, key)
    except (urllib.error.URLError, OSError) as exc:
        err.write(
            f"fin-agent: error: the agent at {base} cannot be reached ({exc}): is it running?\n"
        )
        return EXIT_REQUEST
    if status != 202:
        err.write(f"fin-agent: error: the agent answered HTTP {status}: {text}\n")
        return EXIT_REQUEST
    out.write(f"{args.ctl_command} sent as command {key}; waiting for the day to decide it\n")
    out.flush()
    deadline = time.monotonic() + args.timeout_secs
    while time.monotonic() < deadline:
        try:
            status, text = _call(f"{base}/api/commands/{key}", token, None, None)
        except (urllib.error.URLError, OSError):
            status, text = 0, ""
        outcome = json.loads(text) if status == 200 else {}
        if outcome.get("status") == "applied":
            out.write(f"applied: {outcome.get('detail')}\n")
            return EXIT_APPLIED
        if outcome.get("status") == "refused":
            out.write(f"refused: {outcome.get('detail')}\n")
            return EXIT_REFUSED
        time.sleep(POLL_SECS)
    out.write(
        f"no outcome within {args.timeout_secs:g} s: the command waits for the day's next "
        f"decision point (its next minute of bars); see the event log, or GET "
        f"{base}/api/commands/{key}\n"
    )
    return EXIT_TIMEOUT
