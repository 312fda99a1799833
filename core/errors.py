"""Errors a user can cause, each with a message that says what is wrong and how to fix it.

An error carries a :class:`core.i18n.Message` (a string id in ``core/locales`` plus its
parameters): ``raise DataError("data.err.empty_file", filename=name)``. ``str(error)`` is the
English text; pages show ``error.render(lang)`` with ``st.error``; the CLI prints it on standard
error (English unless ``--lang zh``) and exits 2. Plain English text is still accepted while
older raise sites are moved to ids. Anything else that escapes is an internal error (exit 1).
"""

from __future__ import annotations

from typing import Any

from core.i18n import DEFAULT_LANGUAGE, Message, has


class OpinionLabError(Exception):
    """Base class of every error caused by the user's input or settings."""

    def __init__(self, message: str | Message = "", /, **params: Any):
        if isinstance(message, Message):
            self.message: Message | None = message
        elif params or has(message):
            self.message = Message(message, params)
        else:  # plain English text from a raise site that has no message id yet
            self.message = None
        super().__init__(str(self.message) if self.message is not None else message)

    def render(self, lang: str = DEFAULT_LANGUAGE) -> str:
        return self.message.render(lang) if self.message is not None else str(self)


class DataError(OpinionLabError):
    """A file or table cannot be read or does not make a usable dataset."""


class ConfigError(OpinionLabError):
    """A setting is out of range or names something that does not exist."""


class NotFoundError(OpinionLabError):
    """A dataset, run, job or model named by the user does not exist."""


class WorkspaceError(OpinionLabError):
    """The workspace folder or its registry cannot be written (disk full, locked, read-only)."""
