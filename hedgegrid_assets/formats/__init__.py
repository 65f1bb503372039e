"""Vendor formats: landed files -> canonical frames, one reader per data kind.

- `binance/`: WebSocket messages (`ws.py`, Tardis replays and JSONL recordings alike), the
  diff-depth book (`depth.py`), Binance public data files (`public_data.py`).
- `tardis/`: Tardis CSV datasets (`datasets.py`) and their order-book files (`book.py`).
- `csv/`: CSV files into frames, columnar (`reader.py`), for every CSV format above and the
  generic column-mapped one.
- `parsing.py`: columnar value parsing shared by all of them (timestamps, numbers, sides).

A format knows nothing of Dagster or of where files come from: sources/ choose the files and
call these readers.
"""
