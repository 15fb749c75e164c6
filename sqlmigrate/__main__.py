"""`python -m sqlmigrate` runs the command line."""
from sqlmigrate.cli import entry

entry()
