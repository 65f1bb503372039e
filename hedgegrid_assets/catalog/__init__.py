"""Writing validated frames into the NautilusTrader Parquet catalog."""
