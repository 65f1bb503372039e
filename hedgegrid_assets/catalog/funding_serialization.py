"""Arrow serialization for `FundingRateUpdate`, which nautilus_trader 1.220 lacks.

Registered when `hedgegrid_assets` is imported, so any process that imports the package can
write funding rates with `ParquetDataCatalog.write_data`, read them with
`catalog.query(FundingRateUpdate)` and load them in a `BacktestNode` (pyarrow backend only:
the Rust streaming backend, `chunk_size` in backtest configs, does not know this class).
"""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
from nautilus_trader.model.data import FundingRateUpdate
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.serialization.arrow.serializer import register_arrow

# The rate is exact in decimal128 with the catalog's fixed-point scale (16 places).
RATE_TYPE = pa.decimal128(38, 16)

FUNDING_RATE_SCHEMA = pa.schema(
    [
        pa.field("instrument_id", pa.string(), nullable=False),
        pa.field("rate", RATE_TYPE, nullable=False),
        pa.field("next_funding_ns", pa.uint64(), nullable=True),
        pa.field("ts_event", pa.uint64(), nullable=False),
        pa.field("ts_init", pa.uint64(), nullable=False),
    ],
    metadata={"type": "FundingRateUpdate"},
)


def encode(data: FundingRateUpdate | list[FundingRateUpdate]) -> pa.RecordBatch:
    items = data if isinstance(data, list) else [data]
    return pa.RecordBatch.from_pydict(
        {
            "instrument_id": [d.instrument_id.value for d in items],
            "rate": [Decimal(d.rate) for d in items],
            "next_funding_ns": [d.next_funding_ns for d in items],
            "ts_event": [d.ts_event for d in items],
            "ts_init": [d.ts_init for d in items],
        },
        schema=FUNDING_RATE_SCHEMA,
    )


def decode(table: pa.Table | pa.RecordBatch) -> list[FundingRateUpdate]:
    cols = table.select(FUNDING_RATE_SCHEMA.names).to_pydict()
    ids: dict[str, InstrumentId] = {}
    return [
        FundingRateUpdate(
            ids[iid] if iid in ids else ids.setdefault(iid, InstrumentId.from_str(iid)),
            rate.normalize(),
            ts_event,
            ts_init,
            next_ns,
        )
        for iid, rate, next_ns, ts_event, ts_init in zip(
            cols["instrument_id"], cols["rate"], cols["next_funding_ns"], cols["ts_event"], cols["ts_init"],
            strict=True,
        )
    ]


def register() -> None:
    register_arrow(FundingRateUpdate, FUNDING_RATE_SCHEMA, encoder=encode, decoder=decode)
