"""``python -m lab_tests.conform``: see lab_tests/conform/runner.py."""

import sys

from lab_tests.conform.runner import main

sys.exit(main())
