"""What each command does, from a RunConfig to an exit code: run, retry, plan, validate,
export, rollback.
"""
