"""UI strings and messages in English and Simplified Chinese.

Strings live in ``core/locales/``: ``{lang}.json`` for the pages, plus any number of
``{lang}/<area>.json`` files (``en/trends.json``, ``zh/trends.json`` ...) for the messages each
area of core raises or warns with. All files of a language are merged; a key defined twice is
an error (a test checks it), so two areas never fight over one id.

Core never decides the language a person reads. It says *what* happened as a :class:`Message`
(an id plus parameters); the page renders it in the UI language, the CLI in English unless
``--lang zh``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

LANGUAGES = {"en": "English", "zh": "简体中文"}
DEFAULT_LANGUAGE = "en"
_LOCALES = Path(__file__).parent / "locales"


def locale_files(lang: str) -> list[Path]:
    """Every file that holds strings of ``lang``: the pages' file first, then one per area."""
    files = [_LOCALES / f"{lang}.json"]
    folder = _LOCALES / lang
    return files + (sorted(folder.glob("*.json")) if folder.is_dir() else [])


@cache
def strings(lang: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in locale_files(lang):
        merged.update(json.loads(path.read_text(encoding="utf-8")))
    return merged


def has(key: str) -> bool:
    """Whether ``key`` is a string id (in the English locale, which holds every id)."""
    return key in strings(DEFAULT_LANGUAGE)


def t(key: str, lang: str = DEFAULT_LANGUAGE, **values: object) -> str:
    """The string for ``key`` in ``lang`` (English if missing there; the key itself if nowhere).

    Values that are messages are rendered in the same language first."""
    lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
    text = strings(lang).get(key) or strings(DEFAULT_LANGUAGE).get(key) or key
    if not values:
        return text
    return text.format(**{name: render(value, lang) if isinstance(value, Message) else value
                          for name, value in values.items()})


@dataclass(frozen=True)
class Message:
    """Something to tell a person: a string id and its parameters, rendered in any language.

    ``str(message)`` is the English text, so logs, the CLI and older callers keep working.
    Parameters must be JSON-serialisable (or Messages) so a message can be stored in a report
    or a status file and rendered later in whatever language the reader chose."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)

    def render(self, lang: str = DEFAULT_LANGUAGE) -> str:
        return t(self.key, lang, **self.params)

    def __str__(self) -> str:
        return self.render(DEFAULT_LANGUAGE)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "params": {name: value.to_dict() if isinstance(value, Message) else value
                                            for name, value in self.params.items()}}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Message:
        params = {name: cls.from_dict(value) if _is_message_dict(value) else value
                  for name, value in (values.get("params") or {}).items()}
        return cls(values["key"], params)


def msg(key: str, **params: Any) -> Message:
    """Shorthand: ``msg("data.err.empty_file", filename="x.csv")``."""
    return Message(key, params)


def _is_message_dict(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"key", "params"} and isinstance(value["key"], str)


def render(item: Any, lang: str = DEFAULT_LANGUAGE) -> str:
    """Any message-like thing as text in ``lang``: a Message, its stored dict form, an error
    that carries one, or plain text (returned as it is)."""
    if isinstance(item, Message):
        return item.render(lang)
    if _is_message_dict(item):
        return Message.from_dict(item).render(lang)
    message = getattr(item, "message", None)
    if isinstance(message, Message):
        return message.render(lang)
    return str(item)


def format_count(value: Any, lang: str = DEFAULT_LANGUAGE) -> str:
    """A count as people write it: ``12,345``; an empty value as a dash, never "None"/"nan"."""
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    return f"{int(round(float(value))):,}"


def format_duration(seconds: float | None, lang: str = DEFAULT_LANGUAGE) -> str:
    """``45 s``, ``3 min 20 s``, ``2 h 5 min`` (``45 秒``, ``3 分 20 秒``, ``2 小时 5 分`` in Chinese)."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return t("unit.h_min", lang, h=hours, m=minutes)
    if minutes:
        return t("unit.min_s", lang, m=minutes, s=secs)
    return t("unit.s", lang, s=secs)


def format_timestamp(value: Any, lang: str = DEFAULT_LANGUAGE, with_time: bool = True) -> str:
    """A registry timestamp (ISO text or epoch seconds) as local date and time, in the language's order."""
    import datetime as dt

    if value is None or value == "":
        return "—"
    try:
        if isinstance(value, (int, float)):
            moment = dt.datetime.fromtimestamp(float(value))
        else:
            moment = dt.datetime.fromisoformat(str(value))
            if moment.tzinfo is not None:
                moment = moment.astimezone().replace(tzinfo=None)
    except (ValueError, OverflowError, OSError):
        return str(value)
    key = "unit.datetime" if with_time else "unit.date"
    return t(key, lang, y=moment.year, mo=f"{moment.month:02d}", d=f"{moment.day:02d}",
             h=f"{moment.hour:02d}", mi=f"{moment.minute:02d}")
