"""``python -m torch_lab``: list the commands (see ``torch_lab.cli.overview``)."""

import sys

from torch_lab.cli.overview import main

sys.exit(main())
