"""Finnhub: the trade WebSocket feed and the REST API."""
