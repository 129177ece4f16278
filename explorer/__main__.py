"""`python -m explorer train|evaluate|embed ...` (see explorer.cli)."""

import sys

from explorer.cli import main

sys.exit(main())
