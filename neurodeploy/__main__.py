"""``python -m neurodeploy`` is the ``neurodeploy`` command."""

from neurodeploy.cli.main import main

if __name__ == "__main__":
    main()
