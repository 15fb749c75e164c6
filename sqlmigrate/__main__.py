"""`python -m sqlmigrate` runs the command line."""
import sys

from sqlmigrate.cli import main

sys.exit(main())
