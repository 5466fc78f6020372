"""The live market behind the `MarketData` and `News` ports, and trades to 1-minute bars."""
