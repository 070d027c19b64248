"""Count sparse MoE layers by what the architecture does per token: each token through its top-k experts.

With random weights, routing is an accident of the weights (expert capacity, dropped tokens), and the
dispatch uses data-dependent shapes (``nonzero``) that fake tensors and ``meta`` cannot run. While counting,
each experts block is replaced by a routing-independent equivalent: every token runs through exactly
``top_k`` expert FFNs, weighted as routed. Router matmuls run unchanged. Capacity-based token dropping
(Switch) is not modelled: the count is the architecture's per-token compute.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


def _switch_experts_forward(self, hidden_states, selected_experts, routing_weights):
    return self["expert_0"](hidden_states) * routing_weights


def _switch_router_forward(self, hidden_states):
    """Switch's top-1 router without its per-call ``classifier.to(dtype)`` (which fake tensors refuse)
    and without capacity masking (not modelled); same matmul and softmax."""
    router_logits = self.classifier(hidden_states.to(self.classifier.weight.dtype))
    router_probs = nn.functional.softmax(router_logits, dim=-1).to(hidden_states.dtype)
    expert_index = nn.functional.one_hot(torch.argmax(router_probs, dim=-1), num_classes=self.num_experts)
    return expert_index, torch.max(router_probs, dim=-1).values.unsqueeze(-1), router_logits


def _project(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x`` through one expert's weight, stored (out, in) like ``nn.Linear`` or (in, out) as some models keep it
    (a square weight costs the same either way)."""
    return nn.functional.linear(x, weight) if weight.shape[-1] == x.shape[-1] else x @ weight


def _fused_experts_forward(self, hidden_states, top_k_index, top_k_weights):
    out = torch.zeros_like(hidden_states)
    for slot in range(top_k_index.shape[-1]):
        gate, up = _project(hidden_states, self.gate_up_proj[slot]).chunk(2, dim=-1)
        expert_out = _project(self.act_fn(gate) * up, self.down_proj[slot])
        out = out + expert_out * top_k_weights[:, slot, None]
    return out


def _per_token_forward(module: nn.Module):
    if isinstance(module, nn.ModuleDict) and "expert_0" in module:
        return _switch_experts_forward
    if hasattr(module, "gate_up_proj") and hasattr(module, "down_proj") and hasattr(module, "act_fn"):
        return _fused_experts_forward
    return None


def _dense(module: nn.Module) -> bool:
    """A plain MLP named like experts (``shared_experts``): no expert container, no per-expert weight stack."""
    if isinstance(module, (nn.ModuleList, nn.ModuleDict)):
        return False
    return all(p.dim() <= 2 for p in module.parameters(recurse=False)) and not any(
        isinstance(child, (nn.ModuleList, nn.ModuleDict)) for child in module.children()
    )


@contextmanager
def per_token_experts(model: nn.Module) -> Iterator[int]:
    """Patch every recognised experts block (and Switch's router); yields how many modules were patched
    (0 for a dense model)."""
    patched = []
    for name, module in model.named_modules():
        if name.endswith("router") and type(module).__name__ == "SwitchTransformersTop1Router":
            module.forward = types.MethodType(_switch_router_forward, module)
            patched.append(module)
            continue
        if not name.endswith("experts"):
            continue
        forward = _per_token_forward(module)
        if forward is None and _dense(module):
            continue  # a shared expert (every token runs through it): counted as it is
        if forward is None:
            raise NotImplementedError(f"no per-token counting rule for experts block {type(module).__name__}")
        module.forward = types.MethodType(forward, module)
        patched.append(module)
    try:
        yield len(patched)
    finally:
        for module in patched:
            del module.forward
