"""The one exception type that the command line turns into a one-line error.

Raise :class:`UserError` for anything a user can fix (a bad file, a wrong
option, a missing package): its message names the problem and the fix, and
``neurodeploy`` prints it on one line and exits with status 2, no traceback.
Anything else is a bug in neurodeploy and keeps its traceback.
"""

from __future__ import annotations

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A problem with the user's input, reported as one line and exit code 2."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        message = problem if fix is None else f"{problem}; {fix}"
        super().__init__(" ".join(message.split()))
