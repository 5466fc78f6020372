"""`trade_updates` drops, fills happen while it is down, and the reconnect's REST resync finds them.

The local Alpaca server refuses the stream for a while (an outage); the bars fill the entry and
the target at the server with nobody listening; once the stream is back the broker reads the
orders over REST and hands over exactly those fills, once.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from alpaca_support import T0, alpaca_harness, bar, bracket, summary


@pytest.mark.asyncio
async def test_fills_missed_while_the_stream_was_down_arrive_by_the_resync() -> None:
    made, close = await alpaca_harness()
    try:
        server, broker = made.server, made.alpaca
        assert server is not None
        assert broker is not None
        await broker.submit(bracket())
        server.refuse_streams = True
        broker.resynced.clear()
        assert await server.drop_streams() == 1
        # no relay: the server fills with nobody listening, and nothing resyncs
        server.book.on_bars([bar(0, "10.40", "10.60", "10.35", "10.55")])
        server.book.on_bars([bar(1, "10.60", "11.60", "10.55", "11.40")])
        assert list(await broker.take_fills()) == []
        server.refuse_streams = False
        await asyncio.wait_for(broker.resynced.wait(), timeout=10)
        fills = list(await broker.take_fills())
        assert summary(fills) == [
            ("entry", 100, Decimal("10.50"), T0 + timedelta(minutes=1)),
            ("target", 100, Decimal("11.50"), T0 + timedelta(minutes=2)),
        ]
        await broker.resync()  # a second read changes nothing
        assert list(await broker.take_fills()) == []
        assert server.connections >= 2
    finally:
        await close()


@pytest.mark.asyncio
async def test_fills_come_over_the_stream_without_a_resync() -> None:
    made, close = await alpaca_harness()
    try:
        server, broker = made.server, made.alpaca
        assert server is not None
        assert broker is not None
        await broker.submit(bracket())
        seen = broker.updates
        server.book.on_bars([bar(0, "10.40", "10.60", "10.35", "10.55")])
        # the entry's fill and its two legs' `new`: three updates over the socket
        while broker.updates < seen + 3:
            broker.updated.clear()
            await asyncio.wait_for(broker.updated.wait(), timeout=10)
        assert summary(list(await broker.take_fills())) == [
            ("entry", 100, Decimal("10.50"), T0 + timedelta(minutes=1))
        ]
    finally:
        await close()
