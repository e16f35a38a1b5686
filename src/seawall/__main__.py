"""``python -m seawall``."""

import sys

from seawall.entry import main

sys.exit(main())
