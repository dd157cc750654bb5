import sys

from annealq.console import main

sys.exit(main())
