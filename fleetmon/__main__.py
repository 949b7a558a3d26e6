"""`python -m fleetmon`: the same as the `fleetmon` console script."""

import sys

from fleetmon.cli.main import main

sys.exit(main())
