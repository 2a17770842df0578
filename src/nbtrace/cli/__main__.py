"""``python -m nbtrace.cli``: the ``nbtrace`` command."""

import sys

from . import main

sys.exit(main())
