"""``python -m neurodeploy`` is the ``neurodeploy`` command."""

from neurodeploy.cli import main

main()
