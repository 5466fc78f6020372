"""How the dashboard names a plan's state: a broker's rejection shows its code."""

from __future__ import annotations

from dashboard.tables import state_name


def test_a_broker_rejection_shows_as_rejected_with_its_code() -> None:
    assert state_name("rejected:order_rejected:insufficient_buying_power") == (
        "rejected · insufficient_buying_power"
    )
    assert state_name("rejected:order_rejected:halted") == "rejected · halted"
