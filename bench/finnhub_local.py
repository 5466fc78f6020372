"""The local Finnhub server as a process: `python bench/finnhub_local.py [--port 0] [--token T]`.

The server lives in `fin_agent.adapters.finnhub.local` (the session replay runs it too); this
module keeps its old name for the benchmarks and the tests that import it from bench/.
"""

from __future__ import annotations

from fin_agent.adapters.finnhub.local import *  # noqa: F403
from fin_agent.adapters.finnhub.local import main

if __name__ == "__main__":
    main()
