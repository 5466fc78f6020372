"""Brokers behind the `Orders` port: the paper broker of backtests, the demo and paper trading."""
