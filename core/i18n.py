"""UI strings, one JSON file per language in ``core/locales/``. Pages look every label up here."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

LANGUAGES = {"en": "English", "zh": "简体中文"}
DEFAULT_LANGUAGE = "en"
_LOCALES = Path(__file__).parent / "locales"


@cache
def strings(lang: str) -> dict[str, str]:
    return json.loads((_LOCALES / f"{lang}.json").read_text(encoding="utf-8"))


def t(key: str, lang: str = DEFAULT_LANGUAGE, **values: object) -> str:
    """The string for ``key`` in ``lang`` (English if missing there; the key itself if nowhere)."""
    lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
    text = strings(lang).get(key) or strings(DEFAULT_LANGUAGE).get(key) or key
    return text.format(**values) if values else text
