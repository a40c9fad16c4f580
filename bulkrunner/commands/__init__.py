"""What each command does, from a RunConfig to an exit code: run, retry, plan, validate,
export, rollback; a dry run; what the runs share (``streamed``, ``reporting``, ``resumption``).
"""
