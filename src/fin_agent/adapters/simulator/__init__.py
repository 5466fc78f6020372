"""A seeded simulator of trading days: offline market data and news for the demo and backtests."""
