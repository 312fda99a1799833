"""Language mix of a text column and how much of it a vocabulary turns into unknown tokens."""

import pytest

from core.i18n import render
from core.language import (
    detect_language,
    language_mix,
    model_unknown_share,
    suggested_model,
    unknown_token_share,
    vocabulary_warning,
)
from core.samples import load_sample
from tests.core.e5_model import encoder


@pytest.mark.parametrize("text, language", [
    ("这个手机很好用，电池也耐用", "zh"), ("1、硬件", "zh"), ("优点：交通便利", "zh"),  # py3langid: Wu Chinese
    ("I loved this movie, the acting was superb.", "en"), ("a taut , sobering film .", "en"),
    ("质量一般 but the price is OK", "zh"), ("iPhone 15 的拍照效果比 Galaxy 好", "zh"),
    ("la cinta comienza intentando ser un drama , rápidamente se transforma en una comedia", "other"),
    ("東京の天気はどうですか", "other"), ("Привет, как дела у тебя сегодня?", "other"),
    ("12345 !!!", ""), ("🎉🔥💯", ""), ("", ""), ("   ", ""),
])
def test_one_text(text, language):
    assert detect_language(text) == language


@pytest.mark.parametrize("sample, language", [("chinese-reviews", "zh"), ("movie-reviews", "en")])
def test_the_two_samples_are_read_as_their_language(sample, language):
    texts = load_sample(f"sample:{sample}")[0].frame["text"].tolist()
    mix = language_mix(texts, sample=600)
    assert mix.read == 600 and mix.total == len(texts) and mix.dominant == language
    assert mix.shares[language] >= 0.98
    assert abs(sum(mix.shares.values()) - 1) < 1e-9
    line = render(mix.message(), "en")
    assert line.startswith("Languages:") and f"of {len(texts):,} texts" in line
    assert "中文" in render(mix.message(), "zh")


def test_a_mixed_column_and_a_small_one_are_counted_whole():
    texts = ["这个手机很好用"] * 6 + ["Great phone, I love it"] * 3 + ["Muy buen teléfono, me encanta mucho"] + ["👍"]
    mix = language_mix(texts)
    assert mix.read == mix.total == 11 and mix.without_letters == 1
    assert mix.shares == {"zh": 0.6, "en": 0.3, "other": 0.1}
    assert str(mix.message()) == "Languages: 60% Chinese, 30% English, 10% other."
    nearly_all = language_mix(["这个手机很好用"] * 999 + ["Great phone, I love it"])
    assert str(nearly_all.message()) == "Languages: >99% Chinese, <1% English, 0% other."


def test_the_english_vocabulary_turns_most_chinese_tokens_into_unknowns():
    texts = load_sample("sample:chinese-reviews")[0].frame["text"].tolist()
    assert model_unknown_share("default", texts, sample=300) > 0.5  # measured 0.64 on 2,000 reviews
    assert unknown_token_share(encoder().tokenizer, texts, sample=300) < 0.01
    english = ["I loved this movie, the acting was superb."] * 3
    assert model_unknown_share("default", english) == 0.0


def test_the_model_suggestion_and_the_warning_follow_the_measure():
    chinese = ["这个手机很好用，电池也耐用"] * 20
    english = ["I loved this movie, the acting was superb."] * 20
    assert suggested_model(language_mix(chinese)) == "multilingual"
    assert suggested_model(language_mix(english[:19] + chinese[:1])) == "multilingual"  # 5% Chinese
    assert suggested_model(language_mix(english[:20] + chinese[:1])) == "default"  # 4.8%
    assert suggested_model(language_mix(english)) == "default"
    warning = vocabulary_warning("default", chinese)
    assert "turns 77% of this dataset's tokens into unknown tokens" in str(warning)  # 10 of 13 tokens
    assert "未知词元" in render(warning, "zh") and "'multilingual'" in str(warning)
    assert vocabulary_warning("default", english) is None
    assert vocabulary_warning("multilingual", chinese) is None


def test_a_short_english_phrase_is_not_taken_for_french():
    """A survey answer of two words gives the detector little: it must be very sure to say other."""
    from core.language import detect_language

    assert detect_language("Excellent quality") == "en"
    assert detect_language("Great value") == "en"
    assert detect_language("Très bon produit, je le recommande vivement à tous mes amis") == "other"
