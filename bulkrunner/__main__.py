import sys

from bulkrunner.cli import main

sys.exit(main())
