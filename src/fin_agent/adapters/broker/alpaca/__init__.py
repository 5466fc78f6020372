"""The `Orders` port on Alpaca: `AlpacaBroker`, its REST calls and its `trade_updates` stream."""
