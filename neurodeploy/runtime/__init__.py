"""Running a deployment: the backends table, the torch backend, Lava (runtime/lava), graph runs, the cluster of
large runs and the run options. See docs/ARCHITECTURE.md.
"""
