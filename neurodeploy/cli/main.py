"""The ``neurodeploy`` command: a thin layer over the Python API.

Each command parses its options, calls one API function and prints. A
:class:`~neurodeploy.errors.UserError` becomes one line on stderr and exit
status 2; nothing else is caught. The commands live one group to a module of
this folder and register on :data:`neurodeploy.cli.app.app` when imported, in
the order ``--help`` lists them.
"""

from __future__ import annotations

import os
import signal
import sys

from rich.markup import escape

from neurodeploy.cli.app import app, err_console
from neurodeploy.errors import EXIT_USER_ERROR, UserError

# isort: off
# Importing a command module registers its commands on `app`; --help lists them in this order.
from neurodeploy.cli import doctor, model_commands, convert, simulate, profile, demo, hw  # noqa: F401
# isort: on


class Stopped(SystemExit):
    """SIGTERM or Ctrl-C (SIGINT), raised in the main thread as a SystemExit (Typer turns a KeyboardInterrupt
    into "Aborted!"): every ``finally`` runs, so Lava's processes stop and free their shared memory and
    temporary outputs are removed; :func:`main` prints one line. A command may set ``note`` (what it kept)."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.what = "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted (Ctrl-C)"
        self.note = ""


def _stop(signum: int, frame: object) -> None:
    for each in (signal.SIGTERM, signal.SIGINT):  # a second signal must not cut the clean-up short
        signal.signal(each, signal.SIG_IGN)
    raise Stopped(signum)


def main() -> None:
    """Entry point: UserError becomes one line and exit code 2; SIGTERM and Ctrl-C unwind cleanly.

    SIGTERM (exit 143) and Ctrl-C (exit 130) raise :class:`Stopped` so that every ``finally`` runs: the spike
    bridge stops its Lava processes and frees their shared memory (they ignore both signals, even sent to the
    whole process group, and leave the stop to this process), temporary outputs are removed, and what finished
    is kept; one line says so. An OSError that reaches here (a disk full or read-only mid-run) is one line too,
    exit 1.
    """
    signal.signal(signal.SIGTERM, _stop)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # a background job keeps ignoring it
        signal.signal(signal.SIGINT, _stop)
    try:
        app()
    except UserError as exc:
        err_console.print(f"[bold red]error:[/bold red] {escape(exc.cli_message)}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_USER_ERROR)
    except Stopped as exc:
        err_console.print(f"{exc.what}: {exc.note or 'what finished is kept, nothing is half-written'}",
                          highlight=False, soft_wrap=True)
        # Everything is stopped and written by now (the finally blocks ran). The interpreter's own teardown
        # would take seconds more (torch's alone: 2 s on an idle machine, more on a busy one), while a
        # scheduler gives a stop a grace period (docker stop: 10 s) before it SIGKILLs: end here.
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(exc.code)  # type: ignore[arg-type]
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        err_console.print(f"[bold red]error:[/bold red] cannot go on: {escape(exc.strerror or str(exc))}"
                          f"{escape(where)}; what finished is kept", highlight=False, soft_wrap=True)
        sys.exit(1)
