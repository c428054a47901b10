"""`python -m action3d ...` (and `torchrun -m action3d train ...`)."""
import sys

from action3d.cli import main

sys.exit(main())
