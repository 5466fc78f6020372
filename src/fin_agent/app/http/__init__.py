"""The agent's HTTP server (health, readiness, metrics, read API) and the read models it serves."""
