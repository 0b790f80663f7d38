"""``python -m coursepath_async`` runs the ``coursepath-async`` command."""

import sys

from ._cli import main

sys.exit(main())
