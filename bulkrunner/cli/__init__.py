"""The ``bulkrunner`` command line: argv to a RunConfig to a command to an exit code."""
