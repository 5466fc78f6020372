"""fin_agent: a hexagonal, event-driven intraday trading agent."""

__version__ = "0.1.0"
