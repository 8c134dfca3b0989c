"""``python -m aiida_matembed.worker TASK.json``: same as the ``aiida-matembed-worker`` console script."""

import sys

from . import main

sys.exit(main())
