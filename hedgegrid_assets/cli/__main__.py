"""`python -m hedgegrid_assets.cli ...`: the `hedgegrid` command."""

import sys

from hedgegrid_assets.cli import main

sys.exit(main())
