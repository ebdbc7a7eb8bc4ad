"""``python -m mstt`` runs the command line."""

import sys

from mstt.cli import main

sys.exit(main())
