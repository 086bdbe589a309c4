"""``python -m gpulink``: the ``gpulink`` command (see :mod:`gpulink.cli`)."""

import sys

from gpulink.cli import main

sys.exit(main())
