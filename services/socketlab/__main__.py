import sys

from socketlab.cli import main

sys.exit(main())
