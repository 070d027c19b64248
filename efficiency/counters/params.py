"""Parameter counts from a model built on ``meta``: total, trainable, embedding, as used, active per token."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

from torch import nn

from efficiency.specs import ModelSpec


@dataclass(frozen=True)
class ParamCounts:
    """Raw counts (number of scalars). Tied weights count once in ``total``."""

    total: int
    trainable: int
    embedding: int
    non_embedding: int
    as_used: int  # shared modules counted once per call (ALBERT's one layer used 12 times counts 12x)
    active: int  # per token: a sparse MoE counts only the top-k experts a token is routed to

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def _is_embedding_module(module: nn.Module) -> bool:
    return isinstance(module, nn.Embedding) or type(module).__name__.endswith("Embeddings")


def embedding_params(model: nn.Module) -> int:
    """Token, position and type tables, and position/class tokens held directly by *Embeddings modules.

    Projections inside an embeddings block (ViT's patch convolution, ALBERT's 128->768 map) are compute,
    not lookups, and are not counted here.
    """
    seen: set[int] = set()
    total = 0
    for module in model.modules():
        if not _is_embedding_module(module):
            continue
        for param in module.parameters(recurse=False):
            if id(param) not in seen:
                seen.add(id(param))
                total += param.numel()
    return total


def moe_top_k(spec: ModelSpec) -> tuple[int, int] | None:
    """(experts routed to per token, experts per MoE layer) for a sparse MoE spec, else None."""
    cfg = spec.config
    experts = cfg.get("num_local_experts") or cfg.get("num_experts")
    if not spec.is_moe or not experts:
        return None
    top_k = cfg.get("num_experts_per_tok") or cfg.get("top_k") or 1  # Switch routes each token to 1 expert
    return int(top_k), int(experts)


def active_params(model: nn.Module, spec: ModelSpec) -> int:
    """Parameters a token passes through: each expert's weights scaled by top_k / num_experts."""
    routing = moe_top_k(spec)
    total = 0
    for name, param in model.named_parameters():
        is_expert = ".experts." in f".{name}." and "router" not in name and ".gate." not in name
        if routing and is_expert:
            top_k, experts = routing
            total += param.numel() * top_k // experts
        else:
            total += param.numel()
    return total


class CallCounter:
    """Forward pre-hooks that count module calls during one pass, for parameters-as-used."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.calls: Counter = Counter()
        self._handles = []

    def __enter__(self) -> CallCounter:
        for module in self.model.modules():
            self._handles.append(module.register_forward_pre_hook(self._hook))
        return self

    def _hook(self, module: nn.Module, args) -> None:
        self.calls[id(module)] += 1

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()

    def params_as_used(self) -> int:
        """Each parameter times the most calls of a module that owns it (a tied table used by the input
        embedding and the LM head counts once; ALBERT's shared layer counts once per layer)."""
        uses: dict[int, int] = {}
        sizes: dict[int, int] = {}
        for module in self.model.modules():
            for param in module.parameters(recurse=False):
                calls = max(self.calls[id(module)], 1)
                uses[id(param)] = max(uses.get(id(param), 0), calls)
                sizes[id(param)] = param.numel()
        return sum(sizes[k] * uses[k] for k in sizes)


def count_params(model: nn.Module, spec: ModelSpec, as_used: int | None = None) -> ParamCounts:
    params = list(model.parameters())  # deduplicated: tied weights once
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    embedding = embedding_params(model)
    return ParamCounts(
        total=total,
        trainable=trainable,
        embedding=embedding,
        non_embedding=total - embedding,
        as_used=as_used if as_used is not None else total,
        active=active_params(model, spec),
    )


def weight_bytes(total_params: int) -> dict[str, int]:
    """Memory to hold the weights alone at common precisions."""
    return {
        "float32": total_params * 4,
        "bfloat16": total_params * 2,
        "float16": total_params * 2,
        "int8": total_params,
    }
