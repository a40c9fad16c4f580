"""The async core: a batch's stages in one place (``pipeline``: read, plan, back up, send,
verify), each account's ``connection`` that every request goes through with the one retry
policy, and the ``session`` that runs a run's batches over its accounts.
"""
