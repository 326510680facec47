"""`python -m vaezoo` runs the command line."""
import sys

from vaezoo.cli.main import main

sys.exit(main())
