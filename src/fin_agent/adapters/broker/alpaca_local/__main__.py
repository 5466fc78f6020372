"""Run the local Alpaca server: `python -m fin_agent.adapters.broker.alpaca_local --port 8765`.

Its key and secret come from the files `alpaca_key_id` and `alpaca_secret_key` in `--secrets-dir`
(the agent's own secrets: the compose `dev` profile), else `ALPACA_LOCAL_KEY_ID` and
`ALPACA_LOCAL_SECRET_KEY` (defaults `local-key` and `local-secret`); point
`broker.alpaca.base_url` and `stream_url` at it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from datetime import date
from decimal import Decimal
from pathlib import Path

from fin_agent.adapters.broker.alpaca_local.book import LocalBook
from fin_agent.adapters.broker.alpaca_local.market_data import SimulatedUniverse
from fin_agent.adapters.broker.alpaca_local.server import LocalAlpacaServer


async def _serve(args: argparse.Namespace) -> None:
    book = LocalBook(
        cash=Decimal(args.cash), slippage_bps=Decimal(args.slippage_bps), fill_lots=args.fill_lots
    )
    server = LocalAlpacaServer(
        book,
        key_id=_key(args, "alpaca_key_id", "ALPACA_LOCAL_KEY_ID", "local-key"),
        secret_key=_key(args, "alpaca_secret_key", "ALPACA_LOCAL_SECRET_KEY", "local-secret"),
        host=args.host,
        port=args.port,
        universe=SimulatedUniverse(
            args.universe, seed=args.seed, day=args.day, split_day=args.split_day
        )
        if args.universe
        else None,
        rate_limit_per_min=args.rate_limit_per_min,
    )
    await server.start()
    print(f"alpaca-local REST {server.base_url} stream {server.stream_url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def _key(args: argparse.Namespace, secret: str, variable: str, default: str) -> str:
    """The file `secret` in `--secrets-dir` (the agent's own secret files), else `variable`."""
    if args.secrets_dir is not None:
        return (Path(args.secrets_dir) / secret).read_text().strip()
    return os.environ.get(variable, default)


def main() -> None:
    """Parse the arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--cash", default="100000", help="starting cash, USD")
    parser.add_argument("--slippage-bps", default="0", help="fill slippage, basis points")
    parser.add_argument(
        "--secrets-dir", help="read the key and secret from alpaca_key_id, alpaca_secret_key here"
    )
    parser.add_argument(
        "--fill-lots", type=int, default=1, help="report each execution in this many partial fills"
    )
    parser.add_argument(
        "--universe", type=int, default=0, help="serve market data for this many listed symbols"
    )
    parser.add_argument("--seed", type=int, default=7, help="the simulated universe's seed")
    parser.add_argument(
        "--day", type=date.fromisoformat, help="the trading day, YYYY-MM-DD (default: today, NY)"
    )
    parser.add_argument(
        "--split-day",
        type=date.fromisoformat,
        help="the simulated splits' ex-date, YYYY-MM-DD (default: the trading day)",
    )
    parser.add_argument(
        "--rate-limit-per-min", type=int, help="answer 429 past this many /v2 calls in 60 s"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
