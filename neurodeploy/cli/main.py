"""The ``neurodeploy`` command: a thin layer over the Python API.

Each command parses its options, calls one API function and prints. A
:class:`~neurodeploy.errors.UserError` becomes one line on stderr and exit
status 2; nothing else is caught. The commands live one group to a module of
this folder and register on :data:`neurodeploy.cli.app.app` when imported, in
the order ``--help`` lists them.
"""

from __future__ import annotations

import signal
import sys

from rich.markup import escape

from neurodeploy.cli.app import app, err_console
from neurodeploy.errors import EXIT_USER_ERROR, UserError

# isort: off
# Importing a command module registers its commands on `app`; --help lists them in this order.
from neurodeploy.cli import doctor, model_commands, convert, simulate, profile, demo, hw  # noqa: F401
# isort: on


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    """Entry point: UserError becomes one line and exit code 2; SIGTERM and Ctrl-C unwind cleanly.

    SIGTERM is turned into SystemExit so that, like Ctrl-C, it runs every
    ``finally``: the spike bridge stops its Lava processes and frees their
    shared memory, and temporary outputs are removed.
    """
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app()
    except UserError as exc:
        err_console.print(f"[bold red]error:[/bold red] {escape(exc.cli_message)}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        err_console.print("interrupted", highlight=False)
        sys.exit(130)
