"""Errors a user can cause, each with a message that says what is wrong and how to fix it.

Pages show ``str(error)`` with ``st.error``; the CLI prints it on standard error and exits 2.
Anything else that escapes is an internal error (exit 1).
"""


class OpinionLabError(Exception):
    """Base class of every error caused by the user's input or settings."""


class DataError(OpinionLabError):
    """A file or table cannot be read or does not make a usable dataset."""


class ConfigError(OpinionLabError):
    """A setting is out of range or names something that does not exist."""


class NotFoundError(OpinionLabError):
    """A dataset, run, job or model named by the user does not exist."""


class WorkspaceError(OpinionLabError):
    """The workspace folder or its registry cannot be written (disk full, locked, read-only)."""
