"""`python -m kiln` runs the console script."""

from kiln.cli.main import main

main()
