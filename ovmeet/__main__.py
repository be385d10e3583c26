import sys

from ovmeet.cli import main

sys.exit(main())
