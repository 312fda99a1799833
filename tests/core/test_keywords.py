"""Keywords: what is never a keyword, the ranking, and the drill-down finding every keyword's texts."""

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import keywords

NOISE = ["https://t.co/AbC123", "http://example.com/a?b=1", "www.shop.cn/item", "example.com", "@anna_k", "@anonymous",
         "@用户", "me@example.org", "2026", "10am", "4k", "&amp;", "&lt;3", "&#39;", "amp", "lt", "gt", "quot", "nbsp",
         "url_removed", "url removed", "http url", "anonymous", "RT", "[link]", "<user>", "{url}", "[图片]", "网页链接",
         "<br />", "user_name"]
FORBIDDEN = {"http", "https", "www", "com", "url", "removed", "anonymous", "rt", "amp", "lt", "gt", "quot", "nbsp",
             "link", "user", "anna", "example", "shop", "item", "org", "co", "abc", "br", "name", "图片", "网页", "链接"}
WORDS = ["battery", "refund", "screen", "cracked", "delivery", "late", "great", "value", "support", "rude", "电池",
         "续航", "客服", "物流", "太慢"]


@pytest.mark.parametrize("noise", NOISE)
def test_links_mentions_numbers_markup_and_placeholders_are_never_terms(noise):
    terms = keywords.terms(f"The battery died {noise} again")
    assert {"battery", "died", "battery died"} <= terms
    assert not {word for term in terms for word in term.split(" ")} & FORBIDDEN, terms


def test_noise_does_not_join_words_into_false_phrases():
    terms = keywords.terms("RT @anonymous: refund url_removed denied http url anonymous anonymous")
    assert terms == {"refund", "denied", "refund denied"}
    assert keywords.terms("物流太慢了 网页链接 @小明") == {"物流", "太慢", "物流 太慢"}


def test_the_stop_list_read_from_source_is_scikit_learns(monkeypatch):
    import sys

    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    monkeypatch.delitem(sys.modules, "sklearn")  # as in a process that has not imported it: the source path
    assert keywords.sklearn_stop_words() == ENGLISH_STOP_WORDS and len(ENGLISH_STOP_WORDS) > 300


def test_log_odds_ranks_the_overrepresented_term_and_needs_min_count():
    target = pd.Series(["battery died"] * 20 + ["fine phone"] * 20 + ["rare word zebra"] * 2)
    reference = pd.Series(["fine phone"] * 200 + ["battery ok"] * 5)
    found = keywords.log_odds_keywords(target, reference)
    assert found[0]["term"] in ("battery died", "battery")  # 48% of target texts against 2% before
    assert "battery died" in [k["term"] for k in found[:2]]
    assert "zebra" not in [k["term"] for k in found]  # two texts are below min_count
    assert "fine" not in [k["term"] for k in found] and "fine phone" not in [k["term"] for k in found]
    died = next(k for k in found if k["term"] == "battery died")  # "battery" alone is folded into it
    assert (died["count"], died["texts"], died["share"], died["baseline_share"]) == (20, 42, round(20 / 42, 4), 0.0)


def test_placeholder_heavy_spike_ranks_the_complaint_not_the_placeholders():
    target = pd.Series([f"RT @anonymous: refund denied url_removed http url #{i}" for i in range(40)]
                       + ["anonymous anonymous &amp; lt gt url removed"] * 30)
    reference = pd.Series(["great value, fast delivery https://t.co/x"] * 200)
    found = [k["term"] for k in keywords.log_odds_keywords(target, reference)]
    assert found[0] == "refund denied"
    assert not {word for term in found for word in term.split(" ")} & FORBIDDEN, found


texts_strategy = st.lists(
    st.lists(st.sampled_from(WORDS + NOISE), min_size=1, max_size=8).map(" ".join), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=texts_strategy, reference=texts_strategy, min_count=st.integers(1, 3))
def test_every_keyword_lists_exactly_the_texts_it_was_counted_in(target, reference, min_count):
    target, reference = pd.Series(target), pd.Series(reference)
    for item in keywords.log_odds_keywords(target, reference, top=50, min_count=min_count):
        listed = keywords.holding(target, item["term"])
        assert listed.sum() == item["count"] >= 1, item
        assert not set(item["term"].split(" ")) & FORBIDDEN, item
