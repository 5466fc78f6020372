"""Strategy research: `fin-agent optimize` (Optuna over the backtest, walked forward) and what
it leaves behind (the study, its summary and the best parameters as a config overlay)."""
