import sys

from alignlib.runner.cli import main

sys.exit(main())
