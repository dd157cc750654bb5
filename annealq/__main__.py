import sys

from annealq.cli import main

sys.exit(main())
