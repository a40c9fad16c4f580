import sys

from bulkrunner.cli.app import main

sys.exit(main())
