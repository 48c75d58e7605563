"""``python -m neurodeploy`` is the ``neurodeploy`` command."""

from neurodeploy.cli import main

if __name__ == "__main__":
    main()
