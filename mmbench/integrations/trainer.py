"""Evaluate a model with mmbench while ``transformers.Trainer`` trains it.

::

    from mmbench.integrations.trainer import MMBenchCallback

    trainer = Trainer(model=model, args=TrainingArguments(..., eval_strategy="steps", eval_steps=500), ...)
    MMBenchCallback(tasks=["easyvqa_caption"], limit=200, processor=processor).attach(trainer)
    trainer.train()

At each evaluation step (``on_evaluate``) the callback runs the chosen tasks on the model in
memory (no checkpoint is written or read), logs every numeric metric through the Trainer
(``trainer.log``, so TensorBoard, W&B and ``trainer.state.log_history`` get it) as
``mmbench/<task>/<metric>``, and keeps each step's run folder, ``<output_dir>/step-<N>/``
(``results.json``, ``predictions/``), so two checkpoints can be compared afterwards
(``mmbench compare <output_dir>/step-500 <output_dir>/step-1000``).

The model's fingerprint is a hash of its current weights
(:meth:`~mmbench.models.hf.HFAdapter.from_loaded`), so one step's results never stand for
another's.  The evaluation leaves training as it was: the model's train/eval mode and the
Python, NumPy and torch random states are restored after it, and it runs on the main process
only.  The prediction cache is off by default (weights change at every step, so entries would
never be reused).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Sequence

from transformers import TrainerCallback

from mmbench.errors import MMBenchError


class MMBenchCallback(TrainerCallback):
    """Run mmbench ``tasks`` on the model being trained at each evaluation step.

    ``processor``: the model's processor (for a ViT+GPT-2 captioner, which has none, an
    ``(image_processor, tokenizer)`` pair); default the Trainer's ``processing_class``.
    ``output_dir``: where ``step-<N>/`` folders go (default ``<TrainingArguments.output_dir>/mmbench``).
    ``adapter``: the mmbench adapter family (default: chosen from the model's config, as for
    ``--model``).  ``options``: other :class:`~mmbench.runner.config.EvalConfig` fields
    (``batch_size``, ``include``, ``meteor``...).  ``prefix``: the logged metrics' prefix.
    """

    def __init__(self, tasks: Sequence[str] | str, *, limit: int | None = None, output_dir: str | None = None,
                 processor: Any = None, adapter: str | None = None, name: str = "in-training",
                 prefix: str = "mmbench", cache: bool = False, **options: Any):
        from mmbench.runner.config import EvalConfig, task_names

        self.tasks = task_names(tasks)
        self.limit = limit
        self.output_dir = output_dir
        self.processor = processor
        self.adapter_name = adapter
        self.name = name
        self.prefix = prefix
        self.config = EvalConfig(tasks=self.tasks, limit=limit, cache=cache, **options)
        self.trainer: Any = None
        self._adapter: Any = None
        #: step -> the run folder written there
        self.runs: dict[int, Path] = {}

    def attach(self, trainer: Any) -> "MMBenchCallback":
        """Add this callback to ``trainer`` and log through it (``trainer.log``); returns self."""
        trainer.add_callback(self)
        self.trainer = trainer
        return self

    # -- the Trainer's hooks -----------------------------------------------------
    def on_evaluate(self, args: Any, state: Any, control: Any, model: Any = None, processing_class: Any = None,
                    **kwargs: Any) -> None:
        if not state.is_world_process_zero or model is None:
            return
        out_dir = Path(self.output_dir or Path(args.output_dir) / "mmbench") / f"step-{state.global_step}"
        results = self.evaluate(model, processing_class, out_dir)
        self.runs[state.global_step] = out_dir
        logs = {f"{self.prefix}/{task}/{metric}": value for task, result in results["tasks"].items()
                for metric, value in result["metrics"].items() if isinstance(value, (int, float))}
        if self.trainer is not None:
            self.trainer.log(logs)
        else:  # not attached: the history still gets them (no reporting integrations see them)
            state.log_history.append({**logs, "step": state.global_step})

    # -- the work ------------------------------------------------------------------
    def evaluate(self, model: Any, processor: Any, out_dir: Path) -> dict[str, Any]:
        """Evaluate ``model`` (in memory) on the tasks into ``out_dir``; returns the results dict.
        Training state (mode, random generators) is left as it was."""
        from mmbench.runner.evaluate import evaluate

        adapter = self._adapter_for(model, processor)
        with _rng_kept(), adapter.evaluating():
            adapter.refresh_fingerprint()  # the weights of this step
            return evaluate(self.config.with_overrides(output=str(out_dir)), loaded_model=adapter)

    def _adapter_for(self, model: Any, processor: Any) -> Any:
        if self._adapter is not None and self._adapter.model is model:
            return self._adapter
        from mmbench.catalog import MODELS
        from mmbench.models.resolve import adapter_for_config

        processor = self.processor if self.processor is not None else processor
        if processor is None:
            raise MMBenchError("MMBenchCallback needs the model's processor: pass processor= (or give the "
                               "Trainer a processing_class)")
        family = self.adapter_name or adapter_for_config(model.config.to_dict(), type(model).__name__)
        cls = MODELS.get(family)
        if not hasattr(cls, "from_loaded"):
            raise MMBenchError(f"adapter {family!r} cannot evaluate a model in memory (only the Hugging Face ones)")
        self._adapter = cls.from_loaded(model, processor, name=self.name)
        return self._adapter


class _rng_kept:
    """Save the Python, NumPy and torch (CPU and CUDA) random states; restore them on exit, so an
    evaluation (which seeds them) does not change what training draws next."""

    def __enter__(self) -> None:
        import numpy as np
        import torch

        self.states = (random.getstate(), np.random.get_state(), torch.random.get_rng_state(),
                       torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)

    def __exit__(self, *exc: Any) -> None:
        import numpy as np
        import torch

        py, np_state, cpu, cuda = self.states
        random.setstate(py)
        np.random.set_state(np_state)
        torch.random.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
