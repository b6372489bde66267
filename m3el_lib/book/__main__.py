"""`python -m m3el_lib.book` builds the book (the same as `m3el book`)."""
import sys

from .runner import main

sys.exit(main())
