"""A local server speaking Alpaca's trading protocol (REST v2 and the `trade_updates` stream).

It fills orders on the bars it is given by the paper broker's rules (`domain/fill_rules.py`), so
tests, the demo and the compose stack's development profile can trade through `AlpacaBroker`
without an account. Run it with `python -m fin_agent.adapters.broker.alpaca_local`.
"""
