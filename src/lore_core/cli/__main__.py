"""``python -m lore_core.cli``."""

import sys

from lore_core.cli import main

sys.exit(main())
