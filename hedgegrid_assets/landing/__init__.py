"""Landing: vendor files onto disk exactly as received, before any parsing.

- `download.py`: vendor files streamed into the raw zone's download cache (resumable, retried, once).
- `compressed.py`: opening landed files whatever their packing (plain, gzip, zip, bz2).
- `raw_zone.py`: each partition's files as landed, with a manifest (sizes, sha256).
- `source_config.py`: the source config files that name local files, and landing them.
"""
