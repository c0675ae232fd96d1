import sys

from facecore.cli import main

sys.exit(main())
