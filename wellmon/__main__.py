import sys

from wellmon.cli import main

sys.exit(main())
