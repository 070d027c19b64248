"""Count sparse MoE layers by what the architecture does per token: each token through its top-k experts.

With random weights, routing is an accident of the weights (expert capacity, dropped tokens), and the
dispatch uses data-dependent shapes (``nonzero``) that fake tensors and ``meta`` cannot run. While counting,
each experts block is replaced by a routing-independent equivalent: every token runs through exactly
``top_k`` expert FFNs, weighted as routed. Router matmuls run unchanged. Capacity-based token dropping
(Switch) is not modelled: the count is the architecture's per-token compute.
"""

from __future__ import annotations

import inspect
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


def _even_top_k_gating_forward(self, hidden_states):
    """JetMoE's top-k gating with each expert's token count (``expert_size``, the split of the sorted tokens) set to
    an even share of the ``tokens x top_k`` routed copies instead of read from the routing (its ``.tolist()`` needs
    values); the ops are the original's. Every expert then runs its share: ``top_k`` expert FFNs per token."""
    logits = self.layer(hidden_states).float()
    top_k_logits, top_k_indices = logits.topk(self.top_k, dim=1)
    top_k_gates = torch.softmax(top_k_logits, dim=1).type_as(hidden_states)
    zeros = torch.zeros([top_k_gates.size(0), self.num_experts], dtype=top_k_gates.dtype, device=top_k_gates.device)
    zeros.scatter(1, top_k_indices, 1).long().sum(0)  # the original's per-expert count, computed and not read
    routed = top_k_indices.numel()
    expert_size = [routed // self.num_experts + (i < routed % self.num_experts) for i in range(self.num_experts)]
    _, index_sorted_experts = top_k_indices.flatten().sort(0)
    batch_index = index_sorted_experts.div(self.top_k, rounding_mode="trunc")
    batch_gates = top_k_gates.flatten()[index_sorted_experts]
    return index_sorted_experts, batch_index, batch_gates, expert_size, logits


def _project(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x`` through one expert's weight, stored (out, in) like ``nn.Linear`` or (in, out) as some models keep it
    (a square weight costs the same either way)."""
    return nn.functional.linear(x, weight) if weight.shape[-1] == x.shape[-1] else x @ weight


def _takes_two(act_fn) -> bool:
    """A gated activation module that takes (gate, up) itself (a soft-capped SwiGLU), not one tensor."""
    forward = getattr(act_fn, "forward", None)
    if forward is None:
        return False
    params = [p for p in inspect.signature(forward).parameters.values() if p.default is p.empty]
    return len(params) >= 2


def _routing(args: tuple, kwargs: dict) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The experts' routing arguments, whatever they are called (``top_k_index``/``router_indices``, then the
    weights): the integer tensor is the per-token expert choice (None: no choice, every expert runs on every token,
    as in a stack of shared experts), a floating one beside it the weights."""
    tensors = [value for value in (*args, *kwargs.values()) if isinstance(value, torch.Tensor)]
    index = next((t for t in tensors if not t.is_floating_point()), None)
    weights = next((t for t in tensors if t.is_floating_point()), None)
    return index, weights


def _stacked(module: nn.Module, name: str) -> torch.Tensor | None:
    """A per-expert weight stack (experts, ., .), or None."""
    value = getattr(module, name, None)
    return value if isinstance(value, torch.Tensor) and value.dim() == 3 else None


def _expert_ffn(self, x: torch.Tensor, slot: int) -> torch.Tensor:
    """One expert's FFN on every token: fused gate+up (SwiGLU, a soft-capped or biased variant), separate gate and up,
    or up alone (a plain MLP), then down; biases where the block keeps them."""
    act = getattr(self, "act_fn", None) or getattr(self, "activation_fn", None) or nn.functional.silu

    def bias(name: str) -> torch.Tensor | float:
        stack = getattr(self, name, None)
        return stack[slot] if isinstance(stack, torch.Tensor) else 0.0

    fused = _stacked(self, "gate_up_proj")
    if fused is not None:
        gate_up = _project(x, fused[slot]) + bias("gate_up_proj_bias")
        if hasattr(self, "_apply_gate"):
            gated = self._apply_gate(gate_up)
        else:
            gate, up = gate_up.chunk(2, dim=-1)
            gated = act(gate, up) if _takes_two(act) else act(gate) * up
    elif _stacked(self, "gate_proj") is not None:
        gated = act(_project(x, self.gate_proj[slot])) * _project(x, self.up_proj[slot])
    else:
        gated = act(_project(x, self.up_proj[slot]) + bias("up_proj_bias"))
    return _project(gated, self.down_proj[slot]) + bias("down_proj_bias")


def _fused_experts_forward(self, hidden_states, *args, **kwargs):
    index, weights = _routing(args, kwargs)
    if index is None:
        top_k = self.down_proj.shape[0]
    else:
        top_k = index.shape[-1] if index.dim() > 1 else 1
    out = torch.zeros_like(hidden_states)
    for slot in range(top_k):
        expert_out = _expert_ffn(self, hidden_states, slot)
        if weights is not None and weights.dim() == 2 and weights.shape[-1] == top_k:
            expert_out = expert_out * weights[:, slot, None]
        out = out + expert_out
    return out


def _score_weighted_forward(self, hidden_states):
    """Llama 4's block gets one copy of every token per expert, (experts x tokens, hidden), each scaled by the
    router's score for that expert (zero for the experts not chosen), and runs every expert on its copy; per token,
    only ``top_k`` copies carry a score. Counted as those: ``top_k`` expert FFNs per token, the rest zeros."""
    experts, width = self.down_proj.shape[0], hidden_states.shape[-1]
    copies = hidden_states.view(experts, -1, width)
    top_k = self._counted_top_k
    chosen = [_expert_ffn(self, copies[slot], slot) for slot in range(top_k)]
    rest = copies.new_zeros(((experts - top_k) * copies.shape[1], width))
    return torch.cat([*chosen, rest])


def _per_token_forward(module: nn.Module):
    if isinstance(module, nn.ModuleDict) and "expert_0" in module:
        return _switch_experts_forward
    has_up = any(_stacked(module, name) is not None for name in ("gate_up_proj", "up_proj"))
    if has_up and _stacked(module, "down_proj") is not None and _routed(module):
        return _fused_experts_forward
    return None


def _routed(module: nn.Module) -> bool:
    """Whether the block's forward takes the routing (index and weights) beside the hidden states; Llama 4's runs
    every expert on score-weighted copies of every token and takes none."""
    params = [p for p in inspect.signature(module.forward).parameters.values() if p.kind != p.VAR_KEYWORD]
    return len(params) >= 2


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
        if type(module).__name__ == "JetMoeTopKGating":  # the router of JetMoE's MoE and MoA (the experts are split
            module.forward = types.MethodType(_even_top_k_gating_forward, module)  # by its counts, not a stack)
            patched.append(module)
            continue
        if not name.endswith("experts"):
            continue
        forward = _per_token_forward(module)
        top_k = getattr(model.get_submodule(name.rpartition(".")[0]), "top_k", None)
        stacked = all(_stacked(module, n) is not None for n in ("gate_up_proj", "down_proj"))
        if forward is None and stacked and not _routed(module) and isinstance(top_k, int):
            module._counted_top_k = top_k  # Llama 4: score-weighted copies for every expert; top_k is its block's
            forward = _score_weighted_forward
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
            if hasattr(module, "_counted_top_k"):
                del module._counted_top_k
