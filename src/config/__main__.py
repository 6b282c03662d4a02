"""`python3 -m src.config`: see src/config/bootstrap.py."""

import sys

from src.config.bootstrap import main

sys.exit(main())
