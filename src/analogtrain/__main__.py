"""``python -m analogtrain``: the same command line as the ``analogtrain`` script."""

import sys

from .cli import main

sys.exit(main())
