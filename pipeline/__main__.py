"""`python -m pipeline` is the `lstm-lrp` command."""

import sys

from pipeline.cli import main

sys.exit(main())
