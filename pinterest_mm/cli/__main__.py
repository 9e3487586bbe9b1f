"""``python -m pinterest_mm.cli``."""

import sys

from . import main

sys.exit(main())
