"""One training step (forward + loss + backward + AdamW) on random data, timed like inference.

The loss is the model's own where labels are simple (causal and seq2seq LMs: the inputs as labels),
cross-entropy on random classes for classifiers, and otherwise the sum of the means of the model's float
outputs, so every output head receives a gradient. Values are random; only the work matters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from efficiency.measure.timing import LatencyStats, measure_latency, num_threads
from efficiency.models.inputs import make_inputs
from efficiency.specs import ModelSpec, Workload


def random_inputs(spec: ModelSpec, workload: Workload, device: str | torch.device, vocab_size: int) -> dict[str, Any]:
    """``make_inputs`` shapes with random token ids / pixels, so no step sees constant data."""
    inputs = make_inputs(spec, workload, device)
    for key in ("input_ids", "decoder_input_ids"):
        if key in inputs:
            inputs[key] = torch.randint(0, vocab_size, inputs[key].shape, device=device)
    if "pixel_values" in inputs:
        pixels = inputs["pixel_values"]
        inputs["pixel_values"] = torch.randn(pixels.shape, dtype=pixels.dtype, device=device)
    return inputs


def _output_tensors(outputs: Any) -> list[torch.Tensor]:
    values = outputs.to_tuple() if hasattr(outputs, "to_tuple") else outputs
    if isinstance(values, torch.Tensor):
        values = (values,)
    return [v for v in values if isinstance(v, torch.Tensor) and v.is_floating_point() and v.requires_grad]


class TrainingStep:
    """Callable that runs one optimizer step on fixed random data; holds the AdamW optimizer."""

    def __init__(
        self,
        model: torch.nn.Module,
        spec: ModelSpec,
        workload: Workload,
        device: str | torch.device = "cpu",
        learning_rate: float = 1e-5,
    ) -> None:
        self.model = model
        self.spec = spec
        self.workload = workload
        vocab = int(getattr(model.config, "vocab_size", None) or 2)
        self.inputs = random_inputs(spec, workload, device, vocab)
        self.class_targets: torch.Tensor | None = None
        if spec.task in {"causal-lm", "seq2seq-lm"}:
            labels_from = "decoder_input_ids" if spec.task == "seq2seq-lm" else "input_ids"
            self.inputs["labels"] = self.inputs[labels_from]
        elif spec.task == "image-classification":
            classes = int(getattr(model.config, "num_labels", 2))
            self.class_targets = torch.randint(0, classes, (workload.batch_size,), device=device)
        trainable = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(trainable, lr=learning_rate)

    def loss(self, outputs: Any) -> torch.Tensor:
        """The model's loss, classifier cross-entropy, or the sum of output means (see module doc)."""
        if getattr(outputs, "loss", None) is not None:
            return outputs.loss
        if self.class_targets is not None:
            logits = outputs.logits.float()
            return torch.nn.functional.cross_entropy(logits, self.class_targets)
        tensors = _output_tensors(outputs)
        if not tensors:
            raise ValueError(f"{self.spec.id}: the model returned no float output to build a training loss from")
        return sum(t.float().mean() for t in tensors)

    def __call__(self) -> None:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        outputs = self.model(**self.inputs)
        self.loss(outputs).backward()
        self.optimizer.step()

    def close(self) -> None:
        """Free gradients and optimizer state and return the model to eval mode."""
        self.optimizer.zero_grad(set_to_none=True)
        self.optimizer.state.clear()
        self.model.eval()


@dataclass(frozen=True)
class TrainingMeasurement:
    """Step time statistics and the throughput they imply."""

    step: LatencyStats
    batch_size: int
    tokens_per_item: int | None

    @property
    def samples_per_s(self) -> float:
        return self.batch_size / self.step.median

    @property
    def tokens_per_s(self) -> float | None:
        return None if self.tokens_per_item is None else self.samples_per_s * self.tokens_per_item

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "training_step_ms": self.step.to_dict(),
            "training_samples_per_s": self.samples_per_s,
        }
        if self.tokens_per_s is not None:
            result["training_tokens_per_s"] = self.tokens_per_s
        return result


def measure_training(
    step: TrainingStep,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    warmup: int = 2,
    min_repeats: int = 5,
    min_time_s: float = 1.0,
    max_repeats: int = 200,
) -> TrainingMeasurement:
    """Warm-up steps (which also create AdamW's state), then timed steps until count and time are reached."""
    with num_threads(threads):
        stats = measure_latency(
            step,
            device=device,
            min_repeats=min_repeats,
            min_time_s=min_time_s,
            warmup=warmup,
            max_repeats=max_repeats,
        )
    tokens = step.workload.seq_len if step.spec.modality == "text" else None
    return TrainingMeasurement(stats, step.workload.batch_size, tokens)
