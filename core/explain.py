"""Which words pushed a prediction: occlusion (remove a word, see how much the predicted
class's probability drops). Works for every kind of run; bounded to 128 model calls so a
text up to the model's limit is explained in seconds on a CPU."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from core.errors import ConfigError

_WORDS = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\s\u3400-\u9fff\uf900-\ufaff]+")
MAX_PASSES = 128


def words_of(text: str) -> list[str]:
    """Words for Latin scripts, single characters for Chinese."""
    return _WORDS.findall(text)


def explain(predictor: Any, text: str) -> dict[str, Any]:
    text = (text or "").strip()
    if not text:
        raise ConfigError("explain.err.empty_text")
    tokens = words_of(text)
    base = predictor.predict_proba([text])[0]
    k = int(base.argmax())
    span = max(1, math.ceil(len(tokens) / MAX_PASSES))  # long texts: occlude a few words at a time
    variants, groups = [], []
    for start in range(0, len(tokens), span):
        kept = tokens[:start] + tokens[start + span:]
        variants.append(_join(kept))
        groups.append(range(start, min(start + span, len(tokens))))
    occluded = predictor.predict_proba(variants) if variants else np.zeros((0, len(base)))
    attributions = np.zeros(len(tokens))
    for group, probs in zip(groups, occluded, strict=True):
        attributions[list(group)] = float(base[k] - probs[k])
    limit = getattr(predictor, "max_length", None)
    n_tokens = predictor.token_count(text)
    return {
        "label": predictor.labels[k],
        "probabilities": {lab: float(p) for lab, p in zip(predictor.labels, base, strict=True)},
        "tokens": tokens,
        "attributions": attributions.tolist(),
        "truncated": bool(limit and n_tokens > limit),
        "model_tokens": n_tokens,
        "max_length": limit,
        "words_per_occlusion": span,
    }


def _join(words: list[str]) -> str:
    out = ""
    for w in words:
        if out and not (re.match(r"[\u3400-\u9fff]", w) and re.search(r"[\u3400-\u9fff]$", out)):
            out += " "
        out += w
    return out


def highlight_html(tokens: list[str], attributions: list[float]) -> str:
    """Tokens as HTML spans shaded by attribution (green pushes towards the label, red away).
    Every token is escaped: user text never becomes markup."""
    import html

    top = max((abs(a) for a in attributions), default=0) or 1.0
    spans = []
    for token, a in zip(tokens, attributions, strict=True):
        alpha = min(abs(a) / top, 1.0) * 0.6
        colour = f"rgba(22,163,74,{alpha:.2f})" if a >= 0 else f"rgba(220,38,38,{alpha:.2f})"
        spans.append(f'<span style="background:{colour};padding:1px 2px;border-radius:3px" '
                     f'title="{a:+.3f}">{html.escape(token)}</span>')
    return " ".join(spans)
