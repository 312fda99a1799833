"""The words behind a spike: how a text becomes terms, which terms are never keywords, which
texts hold a term.

One tokeniser (``terms``) serves both the ranking (``log_odds_keywords``) and the drill-down
(``holding``), so every keyword shown is found in exactly the texts it was counted in; a
separate regex search once listed 0 texts for the keyword "url removed".

Social-media exports are full of things that are not opinion: links, @mentions, e-mail
addresses, numbers, HTML entity leftovers (``&amp;`` that lost its ``&`` and ``;`` becomes
"amp") and the placeholders anonymised exports write (``url_removed``, "http url", ``@anonymous``,
``RT``, ``[link]``, ``<user>``, 网页链接). They are removed before tokenising, never ranked.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import re
import sys
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Each kind of noise is removed only from texts that hold its trigger: one regex over every
# text cost 0.4 s per 5,000 reviews, most of it on texts without a link or an @ at all.
_NOISE = [
    (("http", "www.", ".co", ".net", ".org", ".cn", ".io", ".ly", ".gl", ".me", ".uk", ".de", ".fr", ".jp", ".info",
      ".biz"),
     re.compile(r"(?:https?://|www\.)\S+"  # links
                r"|\b[a-z0-9.-]+\.(?:com|net|org|cn|io|co|ly|gl|me|uk|de|fr|jp|info|biz)(?![a-z])(?:/\S*)?")),
    (("@",),  # e-mail addresses first (they hold an @ too), then @mentions and @anonymous
     re.compile(r"\b[a-z0-9.+_-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+|@[\w-]+")),
    (("&", "<", "[", "{"),  # HTML entities (&amp; &#39;) and tags (<br />), placeholders in brackets: [link] <user> [图片]
     re.compile(r"&(?:#\d+|#x[0-9a-f]+|[a-z]{2,8});|</?[a-z][^>]*>|[\[<{]\s*[\w-]+(?:\s[\w-]+)?\s*[\]>}]")),
    (("removed", "redacted", "hidden", "omitted", "deleted", "withheld", "网页", "原文", "转发", "展开", "图片"),
     re.compile(r"\b(?:url|link|user|username|email|e-mail|mention|name|image|photo|video|phone|number)\s+"
                r"(?:removed|redacted|hidden|omitted|deleted|withheld)\b"  # "url removed"
                r"|网页链接|原文链接|转发微博|展开全文|图片评论")),  # Weibo's placeholders for links and reposts
]
_LETTER = "a-z\u00e0-\u00f6\u00f8-\u024f"
# A word is a run of letters that touches no digit, underscore or @: "10am", "mp3", "url_removed"
# and "@anna" give no word at all.
_WORD = re.compile(rf"(?<![0-9_@{_LETTER}])[{_LETTER}](?:[{_LETTER}'\-]*[{_LETTER}])?(?![0-9_{_LETTER}])")
_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_NEGATIONS = ("不", "没", "別", "别", "无")  # opinion-bearing: kept even where a stop list has them
# what is left of links, entities and anonymisation once their punctuation is gone
_LEFTOVERS = frozenset({"http", "https", "www", "com", "url", "urls", "rt", "amp", "lt", "gt", "quot", "apos", "nbsp",
                        "hellip", "mdash", "ndash", "rsquo", "lsquo", "rdquo", "ldquo", "laquo", "raquo", "anonymous",
                        "anonymised", "anonymized", "redacted", "br"})
KEYWORD_SAMPLE = 5000  # texts per side: document frequencies are stable well before that


def sklearn_stop_words() -> frozenset[str]:
    """scikit-learn's English stop list, read from its source file as a literal: importing
    scikit-learn just for it took 1-6 s on a busy 2-core machine, longer than the keywords."""
    if "sklearn" not in sys.modules:
        spec = importlib.util.find_spec("sklearn")
        if spec and spec.submodule_search_locations:
            path = Path(next(iter(spec.submodule_search_locations))) / "feature_extraction" / "_stop_words.py"
            try:
                for node in ast.parse(path.read_text(encoding="utf-8")).body:
                    if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "ENGLISH_STOP_WORDS":
                        return frozenset(ast.literal_eval(node.value.args[0]))  # frozenset([...])
            except (OSError, SyntaxError, ValueError, AttributeError, IndexError):
                pass  # a layout we do not know: import it
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


@cache
def _english_stop_words() -> frozenset[str]:
    # negations carry the complaint ("not worth", "no sound")
    return frozenset(sklearn_stop_words() - {"not", "no", "nor", "never", "cannot"}) | _LEFTOVERS | \
        {"s", "t", "ll", "ve", "re"}


@cache
def _chinese_stop_words() -> frozenset[str]:
    """snownlp's Chinese stop list, minus words that carry opinion (不好, 没有用, 严重)."""
    spec = importlib.util.find_spec("snownlp")
    words: set[str] = {"的", "了", "是", "我", "也", "都", "就", "还", "很", "在", "和", "有", "这", "那", "个", "一个",
                       "我们", "你们", "他们", "这个", "那个", "就是", "还是", "但是", "因为", "所以", "觉得", "感觉",
                       "非常", "比较", "真的", "已经", "可以", "没有", "一下", "什么", "怎么", "这么", "那么",
                       "匿名", "链接", "网页", "转发", "回复"}
    if spec and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "normal" / "stopwords.txt"
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                word = line.strip()
                if word and _CJK_RUN.fullmatch(word) and not word.startswith(_NEGATIONS) and word != "严重":
                    words.add(word)
    return frozenset(words)


@cache
def _jieba() -> Any:
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)  # jieba announces its dictionary load on stderr
    return jieba


def clean(text: str) -> str:
    """The text in lower case without links, mentions, addresses, markup and placeholders."""
    text = text.lower()
    for triggers, pattern in _NOISE:
        if any(trigger in text for trigger in triggers):
            text = pattern.sub(" ", text)
    return text


@lru_cache(maxsize=16_384)  # exports repeat texts (retweets, templates); bounded, keyed by text only
def terms(text: str) -> frozenset[str]:
    """The distinct terms of one text: English words and bigrams without stop words; Chinese
    words (jieba) of two characters or more without stop words, and their bigrams."""
    stop_en, stop_zh = _english_stop_words(), _chinese_stop_words()
    cleaned = clean(text)
    found: set[str] = set()
    # contractions ("it's", "isn't") are stop words in all but spelling
    words = [w for w in _WORD.findall(cleaned) if w not in stop_en and len(w) > 1 and "'" not in w]
    found.update(words)
    found.update(f"{a} {b}" for a, b in zip(words, words[1:], strict=False))
    for run in _CJK_RUN.findall(cleaned):
        tokens = [w for w in _jieba().lcut(run) if len(w) >= 2 and w not in stop_zh]
        found.update(tokens)
        found.update(f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False))  # "电池 续航": two words
    return frozenset(found)


def holding(texts: pd.Series, term: str) -> pd.Series:
    """Which texts hold ``term``, by the very tokenisation that ranked it."""
    return texts.map(lambda text: term in terms(text)).astype(bool)


def _document_counts(texts: pd.Series) -> tuple[dict[str, int], int]:
    counts: dict[str, int] = {}
    for text in texts:
        for term in terms(text):
            counts[term] = counts.get(term, 0) + 1
    return counts, len(texts)


def _sample(texts: pd.Series, rng: np.random.Generator) -> pd.Series:
    if len(texts) <= KEYWORD_SAMPLE:
        return texts
    return texts.iloc[np.sort(rng.choice(len(texts), KEYWORD_SAMPLE, replace=False))]


def log_odds_keywords(target: pd.Series, reference: pd.Series, top: int = 15, min_count: int = 3,
                      prior: float = 10.0) -> list[dict]:
    """Terms over-represented in ``target`` texts against ``reference`` texts.

    Per term, the log-odds of a text containing it in each set, each smoothed with a Beta prior
    of ``prior`` pseudo-texts at the term's pooled rate (plus half a text each way) (an informative
    prior, after Monroe, Colaresi & Quinn 2008), differenced and divided by its standard error: a
    z-score that does not crown a word seen twice. Terms must occur in ``min_count`` target texts.
    ``count`` is the number of target texts holding the term, ``texts`` the number of target texts."""
    rng = np.random.default_rng(0)
    y1, n1 = _document_counts(_sample(target, rng))
    y0, n0 = _document_counts(_sample(reference, rng))
    if n1 == 0:
        return []
    scored = []
    for term, c1 in y1.items():
        if c1 < min_count:
            continue
        c0 = y0.get(term, 0)
        rate = (c1 + c0) / (n1 + n0)
        a, b = 0.5 + prior * rate, 0.5 + prior * (1 - rate)  # Jeffreys' half-count keeps both sides finite
        delta = math.log((c1 + a) / (n1 - c1 + b)) - math.log((c0 + a) / (max(n0 - c0, 0) + b))
        var = 1 / (c1 + a) + 1 / (n1 - c1 + b) + 1 / (c0 + a) + 1 / (max(n0 - c0, 0) + b)
        z = delta / math.sqrt(var)
        if z > 0:
            scored.append({"term": term, "score": round(z, 3), "count": c1, "texts": n1, "share": round(c1 / n1, 4),
                           "baseline_share": round(c0 / n0, 4) if n0 else 0.0})
    # ties (terms that always occur together) put the phrase first, so its words can be folded in
    scored.sort(key=lambda k: (-k["score"], -k["term"].count(" "), k["term"]))
    return _fold_phrases(scored, top)


def _fold_phrases(scored: list[dict], top: int) -> list[dict]:
    """A phrase and its words are one complaint. A word that (nearly) always occurs inside one
    phrase is shown as that phrase ("support line", not "line"); a word inside a phrase already
    shown is left out."""
    by_word: dict[str, list[dict]] = {}
    for item in scored:
        if " " in item["term"]:
            for word in item["term"].split(" "):
                by_word.setdefault(word, []).append(item)
    picked: list[dict] = []
    shown: set[str] = set()
    for item in scored:
        term = item["term"]
        if " " not in term:
            phrases = [p for p in by_word.get(term, []) if p["count"] >= 0.8 * item["count"]]
            if phrases:
                item = phrases[0]  # the best-ranked phrase holding the word
            elif any(term in p["term"].split(" ") for p in picked):
                continue
        if item["term"] in shown:
            continue
        picked.append(item)
        shown.add(item["term"])
        if len(picked) == top:
            break
    return picked
