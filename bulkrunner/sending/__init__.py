"""The async core: transport, retry policy, engine, reading current state, and the pipeline
of a batch.
"""
