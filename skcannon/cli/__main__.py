"""python -m skcannon.cli"""

import sys

from skcannon.cli import main

sys.exit(main())
