"""Open positions, closed trades and the day's ledger of P&L and equity."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from fin_agent.domain.errors import DomainError
from fin_agent.domain.orders import ExitReason, Fill, FillKind
from fin_agent.domain.values import Side, Symbol


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """Shares held because a plan's entry filled."""

    plan_id: str
    symbol: Symbol
    side: Side
    qty: int
    entry_price: Decimal
    entry_at: datetime
    stop: Decimal
    target: Decimal
    planned_entry: Decimal
    entry_commission: Decimal

    @property
    def exposure(self) -> Decimal:
        """Gross value of the position at its entry price."""
        return self.entry_price * self.qty

    @property
    def initial_risk(self) -> Decimal:
        """One R in money: shares times the planned entry-to-stop distance."""
        return abs(self.planned_entry - self.stop) * self.qty

    def unrealised(self, mark: Decimal) -> Decimal:
        """P&L if the position were closed at `mark`, before the exit commission."""
        return (mark - self.entry_price) * self.qty * self.side.sign - self.entry_commission


@dataclass(frozen=True, slots=True, kw_only=True)
class ClosedTrade:
    """A round trip: entry and exit, P&L after commissions, and its R multiple."""

    plan_id: str
    symbol: Symbol
    side: Side
    qty: int
    entry_price: Decimal
    exit_price: Decimal
    entry_at: datetime
    exit_at: datetime
    exit_reason: ExitReason
    gross_pnl: Decimal
    commission: Decimal
    net_pnl: Decimal
    r_multiple: Decimal


class Ledger:
    """The day's book: open positions, closed trades and realised P&L from a starting equity."""

    def __init__(self, start_equity: Decimal) -> None:
        self.start_equity = start_equity
        self._open: dict[str, Position] = {}
        self._closed: list[ClosedTrade] = []
        self._realised = Decimal(0)  # the sum of the closed trades' net P&L, kept as they close

    @property
    def open_positions(self) -> tuple[Position, ...]:
        """Positions still held, in the order they were opened."""
        return tuple(self._open.values())

    @property
    def closed_trades(self) -> tuple[ClosedTrade, ...]:
        """Round trips finished so far, in the order they closed."""
        return tuple(self._closed)

    @property
    def realised(self) -> Decimal:
        """Net realised P&L of the day (after commissions of closed trades)."""
        return self._realised

    @property
    def gross_exposure(self) -> Decimal:
        """Sum of the open positions' entry values."""
        return sum((p.exposure for p in self._open.values()), Decimal(0))

    def equity(self, marks: dict[Symbol, Decimal] | None = None) -> Decimal:
        """Start equity plus realised P&L, plus unrealised P&L at `marks` when given."""
        value = self.start_equity + self.realised
        for position in self._open.values():
            mark = (marks or {}).get(position.symbol)
            if mark is not None:
                value += position.unrealised(mark)
            else:
                value -= position.entry_commission
        return value

    def position(self, plan_id: str) -> Position | None:
        """The open position of a plan, if any."""
        return self._open.get(plan_id)

    def open(
        self, fill: Fill, *, stop: Decimal, target: Decimal, planned_entry: Decimal
    ) -> Position:
        """Record an entry fill as a new position."""
        if fill.kind is not FillKind.ENTRY:
            raise DomainError(f"fill {fill.client_order_id} is a {fill.kind} fill, not an entry")
        if fill.client_order_id in self._open:
            raise DomainError(f"plan {fill.client_order_id} already holds a position")
        position = Position(
            plan_id=fill.client_order_id,
            symbol=fill.symbol,
            side=fill.side,
            qty=fill.qty,
            entry_price=fill.price,
            entry_at=fill.at,
            stop=stop,
            target=target,
            planned_entry=planned_entry,
            entry_commission=fill.commission,
        )
        self._open[position.plan_id] = position
        return position

    def closing(self, fill: Fill) -> ClosedTrade:
        """The round trip an exit fill would make of its position, without recording it."""
        position = self._open.get(fill.client_order_id)
        if position is None:
            raise DomainError(f"exit fill for {fill.client_order_id}, which holds no position")
        if fill.qty != position.qty:
            raise DomainError(f"exit of {fill.qty} shares for a position of {position.qty}")
        if fill.kind is FillKind.ENTRY:
            raise DomainError(f"fill {fill.client_order_id} is an entry fill, not an exit")
        gross = (fill.price - position.entry_price) * position.qty * position.side.sign
        commission = position.entry_commission + fill.commission
        net = gross - commission
        risk = position.initial_risk
        return ClosedTrade(
            plan_id=position.plan_id,
            symbol=position.symbol,
            side=position.side,
            qty=position.qty,
            entry_price=position.entry_price,
            exit_price=fill.price,
            entry_at=position.entry_at,
            exit_at=fill.at,
            exit_reason=fill.kind.exit_reason,
            gross_pnl=gross,
            commission=commission,
            net_pnl=net,
            r_multiple=(net / risk).quantize(Decimal("0.0001")) if risk else Decimal(0),
        )

    def close(self, fill: Fill) -> ClosedTrade:
        """Record an exit fill, closing the whole position, and return the round trip."""
        trade = self.closing(fill)
        del self._open[fill.client_order_id]
        self._closed.append(trade)
        self._realised += trade.net_pnl
        return trade
