"""The error tree of fin_agent; every message says what to fix.

FinAgentError
├── PermanentError          retrying cannot help: fix the input
│   ├── ConfigError         config.yaml, environment or a secret file is wrong
│   ├── DataError           a data file or a data source gave unusable data
│   ├── DomainError         a rule of the trading domain was broken
│   │   └── InvalidTransitionError   a plan was moved to a state it cannot reach
│   └── OrderRejectedError  a broker refused an order (dropped; the error breaker counts it)
└── TransientError          an outside system failed; retried with backoff
    ├── AdapterError        a Redis, database, broker or HTTP call failed
    ├── FeedError           a market or news feed dropped or misbehaved
    └── DeadlineError       an operation ran out of time
"""

from __future__ import annotations


class FinAgentError(Exception):
    """Root of every error fin_agent raises on purpose."""


class PermanentError(FinAgentError):
    """An error that retrying cannot fix; the message names what to change."""


class ConfigError(PermanentError):
    """The configuration is invalid; the message names each bad field and its fix."""


class DataError(PermanentError):
    """Input data (a bar file, a snapshot) is unusable; the message says why and what to do."""


class DomainError(PermanentError):
    """A trading rule was violated by the caller."""


class InvalidTransitionError(DomainError):
    """A trade plan was asked to move to a state its state machine does not allow."""


class OrderRejectedError(PermanentError):
    """A broker refused an order (buying power, a halted symbol, a price out of band); the
    message is the broker's reason. The order is not retried; `risk.error_breaker` counts it."""


class TransientError(FinAgentError):
    """An outside system failed in a way that may succeed on retry."""


class AdapterError(TransientError):
    """A call to an outside system (Redis, a database, a broker, an HTTP API) failed."""


class FeedError(TransientError):
    """A market or news feed dropped, stalled or sent something unusable."""


class DeadlineError(TransientError):
    """An operation did not finish in its allotted time."""
