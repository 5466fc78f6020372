"""The Streamlit dashboard: the trading day at a glance, read over the agent's HTTP API only.

`app.py` is the entry (`fin-agent dashboard` runs it); `client.py` talks to the agent; `views/`
holds one page per screen; `ui.py` the pieces the pages share. Nothing here opens the store or an
adapter: the agent owns its DuckDB file and serves read models as JSON.
"""
