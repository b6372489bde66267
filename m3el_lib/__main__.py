"""`python -m m3el_lib` runs the `m3el` command line."""
import sys

from .cli import main

sys.exit(main())
