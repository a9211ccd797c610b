"""``python -m functions.container``: serve the app until SIGTERM, then drain and exit."""

import sys

from functions.container.serve import main

sys.exit(main())
