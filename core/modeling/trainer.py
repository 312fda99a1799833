"""Fine-tuning on the Hugging Face ``Trainer``: GPU speed, mixed precision, gradient accumulation,
multi-GPU launches and experiment tracking come from the library; what is ours is here.

``OpinionTrainer`` adds: our length-grouped training order (exact resume), length-sorted
evaluation batches, class-weighted loss, and the out-of-memory rule (split each batch into twice
as many passes, same effective batch, said in plain words — never ``auto_find_batch_size``'s
silent change of the effective batch). ``fine_tune`` wires model, data, arguments and callbacks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import EarlyStoppingCallback, PrinterCallback, Trainer, TrainingArguments

from core.errors import ConfigError
from core.evaluation import classification_metrics
from core.i18n import msg
from core.modeling import adapters, checkpoints, pooling
from core.modeling.callbacks import CompletionCallback, ProgressCallback, RankBudgetCallback, StopCallback
from core.modeling.config import TrainConfig
from core.modeling.encoding import (
    GPU_PAD_MULTIPLE,
    EncodedRows,
    LengthGroupedSampler,
    LengthSortedSampler,
    PadCollator,
    encode_texts,
    pick_device,
)
from core.modeling.state import RunLog, StopFlag, summary
from core.models import check_model


class OpinionTrainer(Trainer):
    def __init__(self, *args: Any, sampler: LengthGroupedSampler, class_weights: torch.Tensor | None = None,
                 passes: int = 1, run_log: RunLog, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.sampler, self.class_weights, self.passes, self.run_log = sampler, class_weights, passes, run_log
        self.adalora = getattr(self.model, "peft_type", None) is not None and str(self.model.peft_type).endswith("ADALORA")
        self.loss_is_scaled_for_ga = False  # our loss is a per-batch mean: the Trainer divides by accumulation
        self._pass_weight = 1.0
        self._group_step, self._group = -1, []
        self._step_loss, self._step_rows = None, 0
        self._inject_oom = {int(s) for s in os.environ.get("OPINIONLAB_INJECT_OOM", "").split(",") if s.strip()}

    def create_optimizer(self, model: Any = None) -> torch.optim.Optimizer:
        optimizer = super().create_optimizer(model)
        adapters.cap_read_out_rate(optimizer, self.model)  # before the scheduler reads the groups' rates
        return optimizer

    def _get_train_sampler(self, train_dataset: Any = None) -> LengthGroupedSampler:
        return self.sampler

    def _get_eval_sampler(self, eval_dataset: Any) -> LengthSortedSampler:
        return LengthSortedSampler(eval_dataset.lengths)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        logits = outputs.logits.float()
        weight = self.class_weights.to(logits.device) if self.class_weights is not None else None
        loss = torch.nn.functional.cross_entropy(logits, labels, weight=weight)
        if self.adalora:
            penalty = adapters.orthogonal_penalty(model)
            loss = loss if penalty is None else loss + penalty
        loss = loss * self._pass_weight
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.state.global_step != self._group_step:  # the first batch of a new optimiser step
            self._group_step, self._group = self.state.global_step, []
        self._group.append(inputs)
        try:
            loss = self._in_passes(model, inputs, num_items_in_batch)
        except torch.OutOfMemoryError:
            loss = self._after_out_of_memory(model, num_items_in_batch)
        self._step_loss = loss if self._step_loss is None else self._step_loss + loss
        self._step_rows += len(inputs["input_ids"])
        return loss

    def take_step_loss(self) -> tuple[float, int]:
        """The loss of the optimiser step just taken and the rows it saw (then reset)."""
        loss, rows = self._step_loss, self._step_rows
        self._step_loss, self._step_rows = None, 0
        return (float(loss) if loss is not None else 0.0), rows

    def _in_passes(self, model, inputs, num_items_in_batch):
        rows = len(inputs["input_ids"])
        if self.passes == 1 or rows == 1:
            self._maybe_inject_oom(rows)
            return super().training_step(model, inputs, num_items_in_batch)
        total = None
        try:
            for part in np.array_split(np.arange(rows), min(self.passes, rows)):
                self._pass_weight = len(part) / rows
                loss = super().training_step(model, self._slice(inputs, part), num_items_in_batch)
                total = loss if total is None else total + loss
        finally:
            self._pass_weight = 1.0
        return total

    def _slice(self, inputs: dict[str, Any], part: np.ndarray) -> dict[str, Any]:
        index = torch.as_tensor(part, device=inputs["input_ids"].device)
        chunk = {k: v.index_select(0, index) for k, v in inputs.items()}
        multiple = GPU_PAD_MULTIPLE if self.args.device.type == "cuda" else 1
        width = -(-int(chunk["attention_mask"].sum(dim=1).max()) // multiple) * multiple
        return {k: (v[:, :width] if v.dim() == 2 else v) for k, v in chunk.items()}

    def _maybe_inject_oom(self, rows: int) -> None:
        """Tests: OPINIONLAB_INJECT_OOM=N runs out of memory once in step N."""
        if self.state.global_step + 1 in self._inject_oom and rows > 1:
            self._inject_oom.discard(self.state.global_step + 1)
            raise torch.OutOfMemoryError("CUDA out of memory (injected for a test)")

    def _after_out_of_memory(self, model, num_items_in_batch):
        """A backward pass may have stopped halfway, so this step's gradients are cleared and every
        batch of the step runs again, each in twice as many passes (same effective batch)."""
        while True:
            largest = max(len(b["input_ids"]) for b in self._group)
            if self.run_log.world > 1 or self.passes * 2 > largest:
                raise torch.OutOfMemoryError("out of memory even after splitting the batches")
            self.passes *= 2
            model.zero_grad(set_to_none=True)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            note = msg("train.log.oom", batch=largest, passes=self.passes, size=-(-largest // self.passes))
            self.run_log.progress.event("oom", step=self.state.global_step + 1, message=str(note),
                                        i18n=note.to_dict())
            try:
                loss = None
                for inputs in self._group:
                    loss = self._in_passes(model, inputs, num_items_in_batch)
                return loss
            except torch.OutOfMemoryError:
                continue

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        # tests: die with the checkpoint half-written (weights on disk, optimizer not yet)
        checkpoints.injected_kill(self.run_log.folder, "checkpoint", self.state.global_step)
        super()._save_optimizer_and_scheduler(output_dir)


@dataclass
class FineTuned:
    """What a finished (or stopped) ``fine_tune`` hands back."""

    model: Any
    tokenizer: Any
    encoded: dict[str, list[list[int]]]
    steps: int
    total_steps: int
    passes: int
    trainable_parameters: int
    total_parameters: int
    device: torch.device


def load_model(config: TrainConfig, model_dir: Path, labels: list[str], total_steps: int = 100) -> tuple[Any, int, int]:
    """The pretrained encoder with a fresh head for ``labels``: read by mean pooling when the encoder
    was trained for it (``core.modeling.pooling``), a peft adapter on top for the adapter methods
    (``total_steps``: AdaLoRA lays out its rank budget over them)."""
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(config.seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)}, use_safetensors=True, attn_implementation="sdpa",
        dtype=torch.float32,  # fp32 master weights even for fp16/bf16 checkpoints; autocast does mixed precision
    )
    if pooling.chosen_pooling(config.pooling, model_dir) == "mean":
        pooling.add_mean_layer(model)
    if config.method in adapters.ADAPTER_METHODS:
        model = adapters.wrap(model, config, total_steps)
    elif pooling.should_freeze(config.freeze_embeddings, model):
        pooling.freeze_word_embeddings(model)
    return (model, *adapters.counts(model))


def class_weights(config: TrainConfig, y: list[int], n_labels: int) -> torch.Tensor | None:
    """Inverse-frequency weights: always with ``on``, with ``auto`` when the largest class is
    at least 1.5× the smallest."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_labels)
    skewed = counts.max() >= 1.5 * max(counts.min(), 1)
    if config.class_weighting == "on" or (config.class_weighting == "auto" and skewed):
        return torch.tensor(len(y) / (n_labels * np.maximum(counts, 1)), dtype=torch.float32)
    return None


def metric_function(labels: list[str]):
    """Accuracy and macro/weighted F1 for ``Trainer.evaluate``, from our own metric code."""
    def compute(prediction: Any) -> dict[str, float]:
        predicted = np.asarray(prediction.predictions).argmax(axis=-1)
        truth = np.asarray(prediction.label_ids)
        metrics = classification_metrics([labels[i] for i in truth], [labels[i] for i in predicted], labels)
        return {k: float(v) for k, v in summary(metrics).items() if v is not None}
    return compute


def training_arguments(config: TrainConfig, folder: Path, device: str, precision: str) -> TrainingArguments:
    every = "steps" if config.eval_every else "epoch"
    tracking = config.report_to != "none"
    if config.report_to == "tensorboard":  # read by the Trainer's TensorBoard callback: this run's folder
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(folder / "tensorboard")
    if config.report_to == "mlflow" and not os.environ.get("MLFLOW_TRACKING_URI"):
        # no tracking server named: a local folder store (mlflow-skinny has no SQL store; mlflow 3
        # keeps the folder store working behind this switch)
        os.environ["MLFLOW_TRACKING_URI"] = str(folder.parent.parent / "mlruns")
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    if config.report_to == "mlflow":
        os.environ.setdefault("MLFLOW_EXPERIMENT_NAME", "opinion-lab")
    return TrainingArguments(
        output_dir=str(folder / "checkpoints"), seed=config.seed, num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size, gradient_accumulation_steps=config.grad_accum,
        per_device_eval_batch_size=max(config.batch_size, 256 if device == "cuda" else 64),
        learning_rate=config.learning_rate, weight_decay=config.weight_decay, warmup_steps=config.warmup_ratio,
        lr_scheduler_type="linear", max_grad_norm=1.0,
        use_cpu=device == "cpu", bf16=precision == "bf16", fp16=precision == "fp16",
        eval_strategy=every, eval_steps=config.eval_every or None,
        # save_total_limit 2: the checkpoint being written never replaces the last complete one
        save_strategy="steps", save_steps=config.checkpoint_every, save_total_limit=2,
        restore_callback_states_from_checkpoint=True,
        metric_for_best_model="macro_f1" if config.early_stopping_patience else None, greater_is_better=True,
        logging_strategy="steps" if tracking else "no", logging_steps=10,
        report_to=[config.report_to] if tracking else [], run_name=config.run_id or None,
        disable_tqdm=True, log_level="error", dataloader_num_workers=0, remove_unused_columns=False,
        ddp_find_unused_parameters=False,
    )


def fine_tune(config: TrainConfig, folder: Path, splits: dict[str, Any], labels: list[str], log: RunLog,
              stop: StopFlag, resume: bool) -> FineTuned:
    """Train ``config`` on ``splits`` with the Trainer; resumes from the newest complete checkpoint."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # worker.log gets our progress lines, not progress bars
    device, precision = pick_device(config.device, config.precision)
    _check_device(device)
    args = training_arguments(config, folder, device, precision)
    log.rank, log.world = args.process_index, args.world_size
    log.samples_per_step = config.batch_size * config.grad_accum * log.world
    model_dir = check_model(config.model)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    steps = adapters.optimizer_steps(len(splits["train"]), config.batch_size, config.grad_accum, config.epochs,
                                     log.world)
    model, trainable, total = load_model(config, model_dir, labels, steps)
    log.progress.event("model", trainable_parameters=trainable, total_parameters=total, device=str(args.device),
                       precision=precision, world_size=log.world)
    index = {lab: i for i, lab in enumerate(labels)}
    encoded = {name: encode_texts(tokenizer, frame["text"].tolist(), config.max_length, config.head_tokens)
               for name, frame in splits.items()}
    y = {name: [index[lab] for lab in frame["label"]] for name, frame in splits.items()}
    start = resume_point(folder / "checkpoints", resume, args.should_save)
    state = checkpoints.marker_state(start) if start else {}
    log.history = list(state.get("history", []))
    callbacks = [ProgressCallback(log), StopCallback(stop, log.world), CompletionCallback(log)]
    if config.method == "adalora":
        callbacks.append(RankBudgetCallback())
    if config.early_stopping_patience:
        callbacks.insert(0, EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    trainer = OpinionTrainer(
        model=model, args=args, train_dataset=EncodedRows(encoded["train"], y["train"]),
        eval_dataset=EncodedRows(encoded["validation"], y["validation"]),
        data_collator=PadCollator(tokenizer.pad_token_id or 0, GPU_PAD_MULTIPLE if device == "cuda" else 1),
        compute_metrics=metric_function(labels), callbacks=callbacks,
        sampler=LengthGroupedSampler([len(x) for x in encoded["train"]], config.batch_size, config.seed),
        class_weights=class_weights(config, y["train"], len(labels)), passes=int(state.get("passes", 1)),
        run_log=log)
    trainer.remove_callback(PrinterCallback)  # stdout is the CLI's; progress goes to progress.jsonl
    for callback in callbacks:
        if hasattr(callback, "trainer"):
            callback.trainer = trainer
    trainer.train(resume_from_checkpoint=str(start) if start else None)
    if stop.stopped_at is None:
        _restore_best(trainer, config)
    return FineTuned(trainer.model, tokenizer, encoded, trainer.state.global_step, trainer.state.max_steps,
                     trainer.passes, trainable, total, args.device)


def _check_device(device: str) -> None:
    available = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available(), "cpu": True}
    if not available.get(device, False):
        raise ConfigError("train.err.device_missing", device=device)


def resume_point(root: Path, resume: bool, main: bool) -> Path | None:
    """The checkpoint to continue from: the newest complete one when resuming (half-written ones
    are removed first); a fresh start clears the checkpoint area instead."""
    import shutil

    if main:
        if resume:
            checkpoints.remove_incomplete(root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return checkpoints.newest_complete(root) if resume else None


def _restore_best(trainer: OpinionTrainer, config: TrainConfig) -> None:
    """With early stopping, end with the weights of the best evaluation, not the last one."""
    state = trainer.state
    if not config.early_stopping_patience or not state.best_global_step or state.best_global_step == state.global_step:
        return
    best = Path(trainer.args.output_dir) / f"checkpoint-{state.best_global_step}"
    if best.is_dir():
        trainer._load_from_checkpoint(str(best))  # the Trainer's own loader (plain or adapter weights)
