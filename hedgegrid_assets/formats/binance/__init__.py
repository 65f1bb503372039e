"""Binance USDT-M formats: WebSocket messages, the diff-depth book, public data files."""
