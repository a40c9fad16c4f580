"""Configuration: options declared once, the run configuration, job files, accounts files,
the environment, and the secret it holds.
"""
