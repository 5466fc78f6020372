"""Alpaca market data and its list of assets: the whole market before the open."""
