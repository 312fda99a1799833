"""Messages: an id plus parameters, rendered in the reader's language; locale files stay in step."""

import json

import pytest

from core import i18n
from core.errors import DataError, OpinionLabError
from core.i18n import Message, msg


def test_every_key_is_defined_once_per_language():
    for lang in i18n.LANGUAGES:
        seen: dict[str, str] = {}
        for path in i18n.locale_files(lang):
            for key in json.loads(path.read_text(encoding="utf-8")):
                assert key not in seen, f"{key!r} is defined in {seen.get(key)} and {path.name}"
                seen[key] = path.name


def test_both_languages_have_the_same_keys_and_placeholders():
    en, zh = i18n.strings("en"), i18n.strings("zh")
    assert set(en) == set(zh), sorted(set(en) ^ set(zh))[:20]
    import string
    for key, text in en.items():
        names = {f[1] for f in string.Formatter().parse(text) if f[1]}
        names_zh = {f[1] for f in string.Formatter().parse(zh[key]) if f[1]}
        assert names == names_zh, key


def test_an_error_with_an_id_renders_in_each_language():
    error = DataError("app.internal_error", kind="ValueError")
    assert str(error) == i18n.t("app.internal_error", "en", kind="ValueError")
    assert error.render("zh") == i18n.t("app.internal_error", "zh", kind="ValueError")
    assert error.render("zh") != str(error)


def test_plain_text_errors_still_work():
    error = OpinionLabError("Something plain.")
    assert str(error) == "Something plain." and error.render("zh") == "Something plain."
    with pytest.raises(DataError, match="plain"):
        raise DataError("plain")


def test_messages_survive_a_round_trip_through_json_with_nested_messages():
    inner = msg("app.internal_error", kind="KeyError")
    outer = Message("app.internal_error", {"kind": inner})
    again = Message.from_dict(json.loads(json.dumps(outer.to_dict())))
    assert again == outer
    assert i18n.render(outer.to_dict(), "zh") == outer.render("zh")
    assert i18n.render(DataError(outer), "zh") == outer.render("zh")
    assert i18n.render("as it is", "zh") == "as it is"


def test_numbers_durations_and_timestamps_follow_the_language():
    assert i18n.format_count(12345.0) == "12,345"
    assert i18n.format_count(None) == "—" and i18n.format_count(float("nan")) == "—"
    assert i18n.format_duration(200, "en") == "3 min 20 s"
    assert i18n.format_duration(200, "zh") == "3 分 20 秒"
    assert i18n.format_duration(7500, "zh") == "2 小时 5 分"
    assert i18n.format_duration(None) == "—"
    assert i18n.format_timestamp("2026-11-28T09:05:00", "zh") == "2026年11月28日 09:05"
    assert i18n.format_timestamp("2026-11-28T09:05:00", "en", with_time=False) == "2026-11-28"
