"""What Opinion Lab adds to the Trainer's loop, as ``TrainerCallback``s.

- :class:`ProgressCallback`: one ``step`` line per optimiser step in ``progress.jsonl`` (step,
  total_steps, epoch, loss, lr, samples_per_s, eta_s), one ``eval`` line per evaluation, the
  throttled status file; dropout seeded from the step, so a resumed run draws the same masks.
- :class:`StopCallback`: a cooperative stop (SIGTERM sets a flag; the step finishes, a
  checkpoint is saved, training ends) and the fault injection tests use.
- :class:`CompletionCallback`: marks each checkpoint complete once the Trainer has saved it,
  and saves a checkpoint at every evaluation.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from core.modeling.checkpoints import injected_kill, mark_complete
from core.modeling.state import RunLog, StopFlag, summary
from core.progress import RateMeter

# Under several processes the stop flag is agreed on every this many steps (an all-reduce waits
# for the device, so not every step), and all ranks stop at the same step.
STOP_SYNC_EVERY = 8


class ProgressCallback(TrainerCallback):
    def __init__(self, log: RunLog, trainer_ref: Any = None):
        self.log = log
        self.trainer = trainer_ref  # set once the Trainer exists (it reads our per-step loss)
        self.meter = RateMeter()
        self._eval_started: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.meter.start()
        if state.global_step:
            self.log.progress.event("resumed", step=state.global_step, total_steps=state.max_steps)
        self.log.progress.status("running", step=state.global_step, total_steps=state.max_steps)

    def on_step_begin(self, args, state, control, **kwargs):
        # dropout is a function of the step (and rank), not of what ran before: exact resume
        torch.manual_seed(self.log.seed * 100_003 + state.global_step * 1_009 + self.log.rank)

    def on_step_end(self, args, state, control, **kwargs):
        loss, rows = self.trainer.take_step_loss()
        rate = self.meter.update(rows * self.log.world) or 0.0
        eta = self._eta(args, state)
        self.log.progress.event(
            "step", step=state.global_step, total_steps=state.max_steps, epoch=math.ceil(state.epoch - 1e-9),
            loss=loss, lr=self.trainer.lr_scheduler.get_last_lr()[0], samples_per_s=rate, eta_s=eta)
        self.log.progress.status("running", throttle=True, step=state.global_step, total_steps=state.max_steps,
                                 eta_s=eta)
        self._eval_started = time.monotonic()
        injected_kill(self.log.folder, "step", state.global_step)

    def _eta(self, args, state) -> float | None:
        """Training at the recent rate, plus the evaluations still to come at their measured length."""
        left = self.meter.eta((state.max_steps - state.global_step) * self.log.samples_per_step)
        if left is None:
            return None
        if self.log.eval_seconds:
            left += self._evaluations_left(args, state) * sum(self.log.eval_seconds) / len(self.log.eval_seconds)
        return left

    @staticmethod
    def _evaluations_left(args, state) -> int:
        if args.eval_strategy == "steps" and state.eval_steps:
            every = int(state.eval_steps)
            return state.max_steps // every - state.global_step // every + 2  # the final one and the test split
        per_epoch = max(1, math.ceil(state.max_steps / max(args.num_train_epochs, 1)))
        return math.ceil((state.max_steps - state.global_step) / per_epoch) + 1

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        shown = summary(metrics or {})
        self.log.history.append({"step": state.global_step, **shown})
        self.log.progress.event("eval", step=state.global_step, total_steps=state.max_steps, split="validation",
                                metrics=shown)
        if self._eval_started is not None:
            self.log.eval_seconds.append(time.monotonic() - self._eval_started)
            self._eval_started = None
        self.meter.start()  # evaluation time is not training speed
        if self.log.judge is not None and self.log.judge(len(self.log.history), shown):
            self.log.pruned_at = state.global_step
            control.should_training_stop = True
        return control


class StopCallback(TrainerCallback):
    """Cooperative stop, and the SIGKILL injection point of the test suite after each step."""

    def __init__(self, flag: StopFlag, world: int = 1):
        self.flag, self.world = flag, world

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:  # finishing anyway: the model is saved, not a checkpoint
            control.should_save = False
            return control
        if self._stopping(state):
            self.flag.stopped_at = state.global_step
            control.should_save = True
            control.should_training_stop = True
        return control

    def _stopping(self, state) -> bool:
        if self.world == 1:
            return self.flag.requested
        if state.global_step % STOP_SYNC_EVERY:
            return False
        import torch.distributed as dist

        device = "cuda" if torch.cuda.is_available() else "cpu"
        agreed = torch.tensor([1.0 if self.flag.requested else 0.0], device=device)
        dist.all_reduce(agreed, op=dist.ReduceOp.MAX)
        self.flag.requested = bool(agreed.item())
        return self.flag.requested


class CompletionCallback(TrainerCallback):
    """A checkpoint at every evaluation (but the last), and each saved one marked complete."""

    def __init__(self, log: RunLog, trainer_ref: Any = None):
        self.log = log
        self.trainer = trainer_ref

    def on_evaluate(self, args, state, control, **kwargs):
        if state.global_step < state.max_steps and not control.should_training_stop:
            control.should_save = True
        return control

    def on_save(self, args, state, control, **kwargs):
        if self.log.world > 1:
            import torch.distributed as dist

            dist.barrier()  # every rank's random state is on disk before the checkpoint counts
        if args.should_save:
            checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            mark_complete(checkpoint, passes=self.trainer.passes, history=self.log.history)
        return control


class RankBudgetCallback(TrainerCallback):
    """AdaLoRA: after each optimiser step (gradients still there), re-allocate the rank budget."""

    trainer: Any = None

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        model = self.trainer.model if self.trainer is not None else kwargs["model"]
        model.base_model.update_and_allocate(state.global_step)
