"""`python -m shim.containerd`: the same program as `containerd-shim-spin-v2`."""

import sys

from shim.containerd.cli import main

sys.exit(main())
