"""CSV files into canonical frames (polars lazy scans), for every CSV format."""
