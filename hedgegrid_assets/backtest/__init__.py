"""`hedgegrid backtest`: a NautilusTrader 1.231 `BacktestNode` over a catalog range with a small
built-in hedge-grid strategy, funding settled at every settlement of the catalog's funding data.

- `strategy.py`: `HedgeGridStrategy`, the grid (levels on the tick grid, re-armed when filled)
  and the fills and equity samples it records.
- `funding.py`: the settlement Nautilus 1.231's Python engine does not do: an actor schedules
  each settlement the funding updates announce, a venue simulation module pays or charges it
  into the account (`SimulatedExchange.adjust_account`), once per settlement.
- `run.py`: the run config from the catalog range, the run, the results.
- `report.py`: the printed summary and the equity-curve PNG.
The `hedgegrid backtest` subcommand is `cli/backtest.py`.

Nothing here imports nautilus_trader at package import time (the CLI's start-up stays fast).
"""
