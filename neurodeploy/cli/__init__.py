"""The ``neurodeploy`` command: one module per group of commands, thin over the API; main.py registers them.
"""
