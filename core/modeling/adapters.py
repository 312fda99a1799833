"""Parameter-efficient fine-tuning methods, all from ``peft`` with ``TaskType.SEQ_CLS``.

LoRA and its relatives (AdaLoRA, LoHa, LoKr) and IA3 change existing weights and are merged into
them when the run is saved, so the model folder loads in ``transformers.pipeline`` like a full
fine-tune. Prefix-tuning, prompt tuning and P-tuning add virtual tokens instead and cannot be
merged: the run folder keeps the adapter (safetensors) and the name of the base model, and
``load_adapter_model`` rebuilds the same base (with the same pooling layer) and applies it.
A method that does not fit a model is found before launch by building a one-layer copy of the
model's architecture, wrapping it and running it on two tokens (``fit_problem``).
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from core.i18n import Message, msg

MERGEABLE = ("lora", "adalora", "loha", "lokr", "ia3")
VIRTUAL_TOKENS = ("prefix", "prompt", "ptuning")
ADAPTER_METHODS = MERGEABLE + VIRTUAL_TOKENS
RANKED = ("lora", "adalora", "loha", "lokr")  # the methods that read lora_r / lora_alpha / lora_targets
# Learning rates the field uses for each method on BERT-size encoders (the PEFT papers' ranges):
# small adapters need larger steps than full fine-tuning; virtual tokens the largest. LoRA's 2e-3
# was chosen on the validation split (quick, 2,000 movie reviews: 0.808 against 0.794 at 5e-4);
# the papers' 5e-4 assumes tens of epochs, the presets give three.
LEARNING_RATES = {"lora": 2e-3, "adalora": 5e-4, "loha": 5e-4, "lokr": 5e-4, "ia3": 5e-3,
                  "prefix": 1e-2, "prompt": 3e-2, "ptuning": 1e-2}
READ_OUT_LR = 2e-3  # the most the trained mean-layer read-out (a dense layer) moves at, whatever the method's rate
MAX_LEARNING_RATE = {"prefix": 0.1, "prompt": 0.1, "ptuning": 0.1, "ia3": 0.05}  # others: 0.01


def optimizer_steps(rows: int, batch_size: int, grad_accum: int, epochs: int, world: int = 1) -> int:
    """Optimiser steps the Trainer will take (AdaLoRA's budget schedule is laid out over them)."""
    batches = max(math.ceil(rows / max(batch_size * world, 1)), 1)
    return max(math.ceil(batches / max(grad_accum, 1)), 1) * epochs


def peft_config(config: Any, hidden_size: int, total_steps: int = 100, fresh: tuple[str, ...] = ()) -> Any:
    """The peft configuration of ``config.method`` with our settings. ``fresh``: modules we added
    to the model (the mean-pooling read-out), trained in full beside the classifier head."""
    import peft

    made = _peft_config(peft, config, hidden_size, total_steps)
    if fresh:
        made.modules_to_save = list(fresh)  # peft adds the classifier head to these itself
    return made


def _peft_config(peft: Any, config: Any, hidden_size: int, total_steps: int) -> Any:
    task = peft.TaskType.SEQ_CLS
    targets = [t.strip() for t in config.lora_targets.split(",") if t.strip()]
    method = config.method
    if method == "lora":
        return peft.LoraConfig(task_type=task, r=config.lora_r, lora_alpha=config.lora_alpha,
                               lora_dropout=config.lora_dropout, target_modules=targets)
    if method == "adalora":  # starts at adalora_init_r per matrix, prunes to lora_r on average
        tinit, tfinal = max(total_steps // 10, 1), max(total_steps * 3 // 10, 1)
        return peft.AdaLoraConfig(task_type=task, init_r=max(config.adalora_init_r, config.lora_r),
                                  target_r=config.lora_r, lora_alpha=config.lora_alpha,
                                  lora_dropout=config.lora_dropout, target_modules=targets,
                                  total_step=max(total_steps, tinit + tfinal + 1), tinit=tinit, tfinal=tfinal,
                                  deltaT=max(total_steps // 20, 1))
    if method == "loha":
        return peft.LoHaConfig(task_type=task, r=config.lora_r, alpha=config.lora_alpha, target_modules=targets,
                               module_dropout=config.lora_dropout)
    if method == "lokr":
        return peft.LoKrConfig(task_type=task, r=config.lora_r, alpha=config.lora_alpha, target_modules=targets,
                               module_dropout=config.lora_dropout)
    if method == "ia3":  # peft's own targets for the architecture (keys, values, feed-forward out)
        return peft.IA3Config(task_type=task)
    if method == "prefix":
        return peft.PrefixTuningConfig(task_type=task, num_virtual_tokens=config.virtual_tokens)
    if method == "prompt":
        return peft.PromptTuningConfig(task_type=task, num_virtual_tokens=config.virtual_tokens)
    if method == "ptuning":
        return peft.PromptEncoderConfig(task_type=task, num_virtual_tokens=config.virtual_tokens,
                                        encoder_hidden_size=hidden_size)
    raise ValueError(method)


def wrap(model: Any, config: Any, total_steps: int = 100) -> Any:
    """The model inside ``config.method``'s adapter. With the mean-pooling layer the pooler is our
    own fresh read-out (an identity at the start), not a pretrained weight: it trains like the head."""
    from peft import get_peft_model

    from core.modeling.pooling import has_mean_layer

    # the pooler's dense layer, not the pooler: peft's merge for IA3/LoHa/LoKr copies a wrapped
    # module's .weight, which only a layer has
    fresh = ("pooler.dense",) if has_mean_layer(model) else ()
    return get_peft_model(model, peft_config(config, model.config.hidden_size, total_steps, fresh))


def cap_read_out_rate(optimizer: Any, model: Any) -> int:
    """Give the trained pooler (``modules_to_save``) its own parameter group at no more than
    ``READ_OUT_LR``: virtual tokens learn at 1e-2–3e-2, a rate that would tear a dense identity
    apart within a few steps. Returns how many tensors moved to the capped group."""
    read_out = {id(p) for name, p in model.named_parameters()
                if p.requires_grad and ".pooler." in name and "modules_to_save" in name}
    if not read_out:
        return 0
    for group in list(optimizer.param_groups):
        moved = [p for p in group["params"] if id(p) in read_out]
        if moved and group["lr"] > READ_OUT_LR:
            group["params"] = [p for p in group["params"] if id(p) not in read_out]
            optimizer.add_param_group({**{k: v for k, v in group.items() if k != "params"}, "params": moved,
                                       "lr": READ_OUT_LR})
    return len(read_out)


def counts(model: Any) -> tuple[int, int]:
    """Trainable and total parameters of the model as it is used: a module peft trains a copy of
    (the head, the read-out) counts once, not with the frozen original it keeps beside it."""
    used = [p for name, p in model.named_parameters() if ".original_module." not in name]
    return sum(p.numel() for p in used if p.requires_grad), sum(p.numel() for p in used)


def orthogonal_penalty(model: Any) -> torch.Tensor | None:
    """AdaLoRA's regulariser (as ``peft.AdaLoraModel.forward`` adds it when it computes the loss
    itself; our trainer computes the loss, so it adds this): mean ‖PPᵀ − I‖ over the P and Q factors."""
    weight = getattr(next(iter(model.peft_config.values())), "orth_reg_weight", 0.0)
    total, count = None, 0
    for name, p in model.named_parameters():
        if p.requires_grad and ("lora_A" in name or "lora_B" in name):
            cov = p @ p.T if "lora_A" in name else p.T @ p
            term = torch.linalg.matrix_norm(cov - torch.eye(cov.shape[0], device=cov.device, dtype=cov.dtype))
            total, count = (term if total is None else total + term), count + 1
    return None if not count or not weight else weight * total / count


def fit_problem(method: str, model_dir: Path, mean_layer: bool) -> Message | None:
    """None when ``method`` works on the model in ``model_dir``; else a message naming both."""
    if method not in ADAPTER_METHODS:
        return None
    error = _fit_error(method, str(model_dir), mean_layer)
    return None if error is None else msg("train.err.method_unfit", method=method, model=Path(model_dir).name,
                                          error=error)


@lru_cache(maxsize=32)
def _fit_error(method: str, model_dir: str, mean_layer: bool) -> str | None:
    from types import SimpleNamespace

    from transformers import AutoConfig, AutoModelForSequenceClassification

    from core.modeling.pooling import add_mean_layer

    small = AutoConfig.from_pretrained(model_dir, num_labels=2)
    for name in ("num_hidden_layers", "n_layers", "num_layers"):
        if hasattr(small, name):
            setattr(small, name, 1)
    small.vocab_size = min(getattr(small, "vocab_size", 64) or 64, 64)
    settings = SimpleNamespace(method=method, lora_r=2, lora_alpha=4, lora_dropout=0.0, adalora_init_r=4,
                               lora_targets="query,value", virtual_tokens=2)
    try:
        model = AutoModelForSequenceClassification.from_config(small)
        if mean_layer:
            add_mean_layer(model)
        wrapped = wrap(model, settings, total_steps=20)
        ids = torch.tensor([[1, 2]])
        wrapped(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.sum().backward()
    except Exception as exc:  # any failure here means the method cannot run on this architecture
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return None


def load_adapter_model(folder: Path, meta: dict[str, Any]) -> Any:
    """A saved virtual-token run: its base model rebuilt as in training, then the adapter applied."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    from core.modeling.pooling import add_mean_layer
    from core.models import check_model

    labels = meta["labels"]
    base = AutoModelForSequenceClassification.from_pretrained(
        check_model(meta["base_model"]), num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)}, use_safetensors=True, attn_implementation="sdpa",
        dtype=torch.float32)
    if meta.get("pooling") == "mean":
        add_mean_layer(base)
    model = PeftModel.from_pretrained(base, Path(folder) / "adapter", is_trainable=False)
    return model.eval()
