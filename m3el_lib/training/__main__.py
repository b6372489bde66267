"""`python -m m3el_lib.training` (and `torchrun ... -m m3el_lib.training`): the `m3el train` command."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
