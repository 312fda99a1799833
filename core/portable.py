"""Portable models: a finished run's classifier as ONNX (fp32 or int8) or as a zipped Hugging Face
folder, to run outside Opinion Lab.

    workspace/exports/<run>-onnx/        model.onnx, tokenizer files, config.json (id2label),
    workspace/exports/<run>-onnx-int8/   labels.json, README.md (how to run it, the check result)
    workspace/exports/<run>-hf.zip       the run's model folder: safetensors, config, tokenizer, README.md

An ONNX export is kept only if its probabilities match the PyTorch model's on the run's own test
texts: fp32 within ``FP32_MAX_DIFF``, int8 picking the same label on ``INT8_MIN_AGREEMENT`` of
them. It is built in a staging folder, so a failed check (or a crash) leaves no export behind.
"""

from __future__ import annotations

import io
import os
import shutil
import uuid
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError
from core.predict import require_finished
from core.workspace import Registry, disk_error, inside, read_json, staging_dir

FORMATS = ("onnx", "hf-zip")
QUANTIZATIONS = ("int8",)
CHECK_TEXTS = 32
FP32_MAX_DIFF = 1e-4  # measured: ~1e-7 on MiniLM; more means an operator was exported wrongly
INT8_MIN_AGREEMENT = 0.97
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")

# Texts for the check when a run has no test predictions to borrow from: short, long, mixed.
FALLBACK_TEXTS = [
    "Great film, I loved every minute of it.", "Terrible. Boring plot and wooden acting.",
    "It was fine, nothing special.", "质量很好，物流也快，非常满意！", "太差了，用了两天就坏了。",
    "The first half drags, but the ending is wonderful and the music is superb. " * 12,
    "Not bad at all", "I want my money back.",
]


@dataclass
class ExportCheck:
    """How closely the export's probabilities follow the PyTorch model's."""

    max_abs_diff: float
    agreement: float  # share of texts on which both pick the same label
    texts: int


@dataclass
class Exported:
    path: Path
    format: str
    quantize: str | None
    bytes: int
    check: ExportCheck | None  # None for hf-zip: the weights are the run's own files

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "format": self.format, "quantize": self.quantize, "bytes": self.bytes,
                "check": asdict(self.check) if self.check else None}


def export_path(run_id: str, format: str, quantize: str | None, registry: Registry) -> Path:
    name = f"{run_id}-hf.zip" if format == "hf-zip" else f"{run_id}-onnx" + (f"-{quantize}" if quantize else "")
    return inside(registry.root, "exports", name)


def export_run(run_id: str, format: str = "onnx", quantize: str | None = None,
               registry: Registry | None = None) -> Exported:
    """Export a finished transformer run; replaces an earlier export of the same kind."""
    registry = registry or Registry()
    folder = check_exportable(run_id, format, quantize, registry)
    final = export_path(run_id, format, quantize, registry)
    if format == "hf-zip":
        return _hf_zip(run_id, folder, final)
    return _onnx(run_id, folder, final, quantize)


def check_exportable(run_id: str, format: str = "onnx", quantize: str | None = None,
                     registry: Registry | None = None) -> Path:
    """The run's folder, or a ConfigError saying why this export cannot be made (before any work)."""
    _check_choice(format, quantize)
    folder = require_finished(run_id, registry)  # names the status of a failed or unfinished run
    _check_kind(run_id, read_json(folder / "model" / "labels.json", {}) or {})
    return folder


def _check_choice(format: str, quantize: str | None) -> None:
    if format not in FORMATS:
        raise ConfigError("export.err.format", value=format, formats=", ".join(FORMATS))
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ConfigError("export.err.quantize", value=quantize, choices=", ".join(QUANTIZATIONS))
    if quantize and format != "onnx":
        raise ConfigError("export.err.quantize_hf", value=quantize)


def _check_kind(run_id: str, meta: dict[str, Any]) -> None:
    kind = meta.get("kind", "transformer")
    if kind == "baseline":
        raise ConfigError("export.err.baseline", run=run_id)
    if kind == "zeroshot":
        raise ConfigError("export.err.zeroshot", run=run_id)
    if kind != "transformer":
        raise ConfigError("export.err.kind", run=run_id, kind=kind)


def check_texts(run_folder: Path, n: int = CHECK_TEXTS) -> list[str]:
    """Up to ``n`` of the run's test texts, spread from the shortest to the longest (so truncated
    texts are checked too), topped up from a fixed mix when the test split is small or missing."""
    path = run_folder / "predictions_test.parquet"
    texts: list[str] = []
    if path.exists():
        import pandas as pd

        column = pd.read_parquet(path, columns=["text"])["text"].astype("str")
        texts = sorted({t for t in column if t.strip()}, key=len)
    picks = np.unique(np.linspace(0, len(texts) - 1, min(n, len(texts))).round().astype(int)) if texts else []
    chosen = [texts[i] for i in picks]
    return chosen + FALLBACK_TEXTS[:max(n - len(chosen), 0)]


def compare(reference: np.ndarray, exported: np.ndarray) -> ExportCheck:
    return ExportCheck(max_abs_diff=float(np.abs(reference - exported).max(initial=0.0)),
                       agreement=float((reference.argmax(1) == exported.argmax(1)).mean()) if len(reference) else 1.0,
                       texts=len(reference))


def _onnx(run_id: str, folder: Path, final: Path, quantize: str | None) -> Exported:
    import torch
    from transformers import AutoTokenizer

    from core.modeling import onnx_backend
    from core.modeling.encoding import encode_texts, predict_proba

    model_dir = folder / "model"
    meta = read_json(model_dir / "labels.json", {}) or {}
    model = onnx_backend.load_cpu_model(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoded = encode_texts(tokenizer, check_texts(folder), int(meta.get("max_length", 128)),
                           int(meta.get("head_tokens", 0)))
    pad_id = tokenizer.pad_token_id or 0
    file_name = onnx_backend.INT8_FILE if quantize else onnx_backend.FP32_FILE
    with staging_dir(final) as tmp:
        try:
            onnx_backend.write_model(model, tmp / file_name, int8=quantize == "int8")
        except Exception as exc:  # an architecture the exporter cannot trace: say so, keep nothing
            raise ConfigError("export.err.failed", run=run_id, model=model.config.model_type,
                              detail=f"{type(exc).__name__}: {str(exc)[:300]}") from exc
        reference = predict_proba(model, encoded, pad_id, torch.device("cpu"))
        check = compare(reference, onnx_backend.predict_encoded(onnx_backend.session(tmp / file_name), encoded, pad_id))
        _require_match(run_id, check, quantize)
        _copy_model_files(model_dir, tmp)
        (tmp / "README.md").write_text(_card(run_id, meta, file_name, check), encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)  # an earlier export of the same kind
    return Exported(final, "onnx", quantize, _size(final), check)


def _require_match(run_id: str, check: ExportCheck, quantize: str | None) -> None:
    diff, agreement = f"{check.max_abs_diff:.2g}", f"{check.agreement:.1%}"
    if quantize and check.agreement < INT8_MIN_AGREEMENT:
        raise ConfigError("export.err.check_int8", run=run_id, agreement=agreement, texts=check.texts,
                          needed=f"{INT8_MIN_AGREEMENT:.0%}", diff=diff)
    if not quantize and check.max_abs_diff > FP32_MAX_DIFF:
        raise ConfigError("export.err.check_fp32", run=run_id, diff=diff, texts=check.texts,
                          limit=f"{FP32_MAX_DIFF:g}")


def _copy_model_files(model_dir: Path, target: Path) -> None:
    """Tokenizer, config (with id2label) and labels.json: everything beside the weights."""
    for path in model_dir.iterdir():
        if path.is_file() and path.suffix not in WEIGHT_SUFFIXES:
            shutil.copy2(path, target / path.name)


def _hf_zip(run_id: str, folder: Path, final: Path) -> Exported:
    """The run's model folder (without the scoring cache) and its test metrics, zipped."""
    from core.modeling.onnx_backend import CACHE_FOLDER

    model_dir = folder / "model"
    meta = read_json(model_dir / "labels.json", {}) or {}
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(model_dir.rglob("*")):
                relative = path.relative_to(model_dir)
                if path.is_file() and relative.parts[0] != CACHE_FOLDER:
                    archive.write(path, f"{run_id}/{relative}", compress_type=_compression(path))
            if (folder / "metrics.json").exists():
                archive.write(folder / "metrics.json", f"{run_id}/metrics.json")
            archive.writestr(f"{run_id}/README.md", _card(run_id, meta, None, None))
        os.replace(tmp, final)
    except OSError as exc:
        raise disk_error(final, exc) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return Exported(final, "hf-zip", None, final.stat().st_size, None)


def _compression(path: Path) -> int:
    """fp32 weights shrink by ~8% in a deflated zip at ~6 s per 90 MB here: stored as they are."""
    return zipfile.ZIP_STORED if path.suffix in WEIGHT_SUFFIXES else zipfile.ZIP_DEFLATED


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def archive_bytes(path: Path) -> bytes:
    """An export as one download: a zip as it is, a folder zipped (under its own name)."""
    path = Path(path)
    if path.is_file():
        return path.read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in sorted(path.rglob("*")):
            if item.is_file():
                archive.write(item, f"{path.name}/{item.relative_to(path)}")
    return buffer.getvalue()


def _card(run_id: str, meta: dict[str, Any], onnx_file: str | None, check: ExportCheck | None) -> str:
    """The export's README: what it is, its inputs and outputs, how to run it, how it was checked."""
    labels = meta.get("labels") or []
    max_length, head = int(meta.get("max_length", 128)), int(meta.get("head_tokens", 0))
    lines = [f"# Opinion Lab run {run_id}" + (f" — ONNX ({'int8' if 'int8' in onnx_file else 'fp32'})"
                                              if onnx_file else " — Hugging Face model"), "",
             "Labels, by output index: " + ", ".join(f"{i} = {lab}" for i, lab in enumerate(labels)) + ".",
             f"Trained on texts of up to {max_length} tokens" + (
                 f"; longer texts kept their first {head} tokens and their end." if head else
                 "; longer texts were cut at the end."), ""]
    if onnx_file:
        lines += [f"`{onnx_file}`: inputs `input_ids` and `attention_mask` (int64, batch × sequence), "
                  "output `logits` (batch × labels); softmax gives the probabilities.", "",
                  "```python", "import numpy as np, onnxruntime as ort", "from transformers import AutoTokenizer",
                  'tokenizer = AutoTokenizer.from_pretrained(".")',
                  f'session = ort.InferenceSession("{onnx_file}", providers=["CPUExecutionProvider"])',
                  f'batch = tokenizer(["Great film!"], truncation=True, max_length={max_length}, padding=True, '
                  'return_tensors="np")',
                  'logits = session.run(["logits"], {k: batch[k] for k in ("input_ids", "attention_mask")})[0]',
                  "probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)", "```", ""]
    else:
        lines += ["```python", "from transformers import pipeline",
                  f'classify = pipeline("text-classification", model="{run_id}", truncation=True)',
                  'classify("Great film!")', "```", ""]
    if check:
        lines.append(f"Checked against the PyTorch model on {check.texts} of the run's test texts: probabilities "
                     f"differ by at most {check.max_abs_diff:.2g}; the same label on {check.agreement:.1%} of them.")
    return "\n".join(lines) + "\n"
