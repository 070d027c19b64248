"""Autoregressive generation of a causal LM: time to first token and per-token decode with the KV cache.

``model.generate`` may stop early at an end-of-sequence token, which random weights emit at random;
a manual greedy loop always decodes the same number of tokens, so runs are comparable. One run is:
prefill (a forward pass over the prompt with ``use_cache=True`` that yields the first new token),
then ``new_tokens`` decode steps, each feeding the previous argmax token and the returned cache
(a transformers ``Cache`` object such as ``DynamicCache``) back in and yielding one more token.
"""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass
from typing import Any

import torch

from efficiency.measure.timing import DeviceClock, LatencyStats, gc_paused, num_threads, synchronize
from efficiency.models.loading import max_positions
from efficiency.specs import ModelSpec, Workload


@dataclass(frozen=True)
class GenerationRun:
    """One generation: prefill seconds and the seconds of each decode step."""

    prefill_s: float
    decode_step_s: tuple[float, ...]

    @property
    def decode_s(self) -> float:
        return math.fsum(self.decode_step_s)


@dataclass(frozen=True)
class GenerationMeasurement:
    """Summary over several runs; medians over runs resist one disturbed run."""

    runs: tuple[GenerationRun, ...]
    batch_size: int
    prompt_tokens: int
    new_tokens: int

    @property
    def ttft(self) -> LatencyStats:
        """Prefill (time to first token) per run."""
        return LatencyStats.from_samples([run.prefill_s for run in self.runs])

    @property
    def decode_per_token(self) -> LatencyStats:
        """Mean decode-step seconds per run (one step produces one token per sequence)."""
        return LatencyStats.from_samples([run.decode_s / self.new_tokens for run in self.runs])

    @property
    def decode_tokens_per_s(self) -> float:
        """batch x new tokens / the median decode time over runs."""
        return self.batch_size * self.new_tokens / statistics.median([run.decode_s for run in self.runs])

    def to_dict(self) -> dict[str, Any]:
        return {
            "ttft_ms": self.ttft.to_dict(),
            "decode_ms_per_token": self.decode_per_token.to_dict(),
            "decode_tokens_per_s": self.decode_tokens_per_s,
            "generation_prompt_tokens": self.prompt_tokens,
            "generation_new_tokens": self.new_tokens,
            "generation_batch_size": self.batch_size,
        }


def prompt_length(spec: ModelSpec, workload: Workload, new_tokens: int) -> int:
    """The prompt: the workload's length, shortened where prompt + new tokens would pass the position limit."""
    limit = max_positions(spec)
    if limit is None:
        return workload.seq_len
    if new_tokens >= limit:
        raise ValueError(f"{spec.id}: {new_tokens} new tokens do not fit in its {limit} positions")
    return min(workload.seq_len, limit - new_tokens)


def _next_token(logits: torch.Tensor) -> torch.Tensor:
    return logits[:, -1, :].argmax(dim=-1, keepdim=True)


def generate_once(
    model: torch.nn.Module, prompt: torch.Tensor, new_tokens: int, clock: DeviceClock
) -> tuple[GenerationRun, torch.Tensor]:
    """One timed greedy generation; returns the timings and the generated tokens (batch, 1 + new_tokens)."""
    start = clock.mark()
    out = model(input_ids=prompt, use_cache=True)
    token = _next_token(out.logits)
    marks = [start, clock.mark()]
    cache = out.past_key_values
    tokens = [token]
    for _ in range(new_tokens):
        out = model(input_ids=token, past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        token = _next_token(out.logits)
        tokens.append(token)
        marks.append(clock.mark())
    seconds = [clock.elapsed(a, b) for a, b in itertools.pairwise(marks)]
    return GenerationRun(seconds[0], tuple(seconds[1:])), torch.cat(tokens, dim=1)


def measure_generation(
    model: torch.nn.Module,
    spec: ModelSpec,
    workload: Workload,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    new_tokens: int = 32,
    repeats: int = 3,
    warmup: int = 1,
) -> GenerationMeasurement:
    """Greedy generation of ``new_tokens`` decode steps after the prompt, ``repeats`` timed runs."""
    if not spec.is_causal_lm:
        raise ValueError(f"{spec.id}: generation is measured for causal LMs only (task is {spec.task!r})")
    if new_tokens < 1 or repeats < 1 or warmup < 0:
        raise ValueError("generation: new_tokens and repeats must be >= 1, warmup >= 0")
    length = prompt_length(spec, workload, new_tokens)
    vocab = int(getattr(model.config, "vocab_size", 2) or 2)
    prompt = torch.randint(0, vocab, (workload.batch_size, length), device=device)
    clock = DeviceClock(device)
    model.eval()
    runs: list[GenerationRun] = []
    with num_threads(threads), torch.inference_mode():
        for _ in range(warmup):
            generate_once(model, prompt, new_tokens, clock)
        synchronize(device)
        with gc_paused():
            for _ in range(repeats):
                run, _tokens = generate_once(model, prompt, new_tokens, clock)
                runs.append(run)
    return GenerationMeasurement(tuple(runs), workload.batch_size, length, new_tokens)
