"""Recorded bar files (CSV, Parquet) and their replay as market data, with split factors."""
