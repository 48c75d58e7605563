"""The one exception type that the command line turns into a one-line error.

Raise :class:`UserError` for anything a user can fix (a bad file, a wrong
option, a missing package): its message names the problem and the fix, and
``neurodeploy`` prints it on one line and exits with status 2, no traceback.
Anything else is a bug in neurodeploy and keeps its traceback.

The same error reaches Python callers and command-line users, who name the
same setting differently (``force=True`` and ``--force``). A message names a
setting once, in backticks, as a Python keyword argument: `` `force=True` ``,
`` `tile=128` ``, `` `lr` ``. ``str(error)`` speaks Python (the backticks
dropped); :attr:`UserError.cli_message` speaks the command line:
`` `name=value` `` becomes ``--name value``, `` `flag=True` `` ``--flag``,
`` `flag=False` `` ``--no-flag``, `` `name` `` ``--name``, with ``_`` as ``-``.
"""

from __future__ import annotations

import re

EXIT_USER_ERROR = 2

_SETTING = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)(?:=([^`]*))?`")


def _as_python(match: re.Match[str]) -> str:
    return match.group(0)[1:-1]


def _as_option(match: re.Match[str]) -> str:
    name, value = match.group(1), match.group(2)
    flag = "--" + name.replace("_", "-")
    if value is None or value == "True":
        return flag
    if value == "False":
        return "--no-" + name.replace("_", "-")
    return f"{flag} {value.strip(chr(34) + chr(39))}"


class UserError(Exception):
    """A problem with the user's input, reported as one line and exit code 2."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        message = problem if fix is None else f"{problem}; {fix}"
        self.message = " ".join(message.split())
        super().__init__(_SETTING.sub(_as_python, self.message))

    @property
    def cli_message(self) -> str:
        """The message with every `setting` written as the command-line option."""
        return _SETTING.sub(_as_option, self.message)
