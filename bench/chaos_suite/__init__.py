"""The chaos suite behind `bench/chaos.py`: services, the agent under test, faults, comparison.

- `services`: a private PostgreSQL cluster (tests/pg_cluster.py), redis-servers, databases and the
  agent's non-superuser role;
- `agent`: `fin-agent run --bus redis` as a supervised child process (kill -9, restarts, exits);
- `compare`: a fault run's store against the uninterrupted reference, table by table, by key;
- `faults`: one function per fault, each returning the figures of one JSON line;
- `self_check`: a tampered copy of the reference, which the comparison must see.
"""

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[2] / "tests"
if str(TESTS) not in sys.path:  # tests/pg_cluster.py and tests/support.py, by name as the tests do
    sys.path.insert(0, str(TESTS))
