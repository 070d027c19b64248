"""Closed-form forward multiply-adds for the transformer families, from the config alone.

Conventions match the counters: matrix work only (projections, attention scores and context, MLPs,
heads); attention counted over the full S x S (no causal saving); lookups (embeddings) cost nothing;
norms, softmax and activations are elementwise and excluded. Per layer of width d, FFN width f, S tokens:

    attention projections   S * d * (q + k + v + o widths)     (GQA shrinks k and v)
    scores and context      2 * S * S_kv * (heads * head_dim)
    MLP                     2 * S * d * f   (3 * S * d * f when gated: gate, up, down)
    MoE                     top_k expert MLPs per token, plus the router S * d * E
    heads                   LM head S * d * V; pooler d * d; classifier d * labels

Formulas are written per family below; a model with none returns None and the output says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from efficiency.specs import ModelSpec, Workload


@dataclass
class AnalyticCount:
    macs: int
    formula: str
    parts: dict[str, int] = field(default_factory=dict)

    @property
    def flops(self) -> int:
        return 2 * self.macs


def _attention(s: int, s_kv: int, d_model: int, q_width: int, kv_width: int) -> dict[str, int]:
    return {
        "attention_projections": s * d_model * (2 * q_width) + s_kv * d_model * (2 * kv_width),
        "attention_scores": 2 * s * s_kv * q_width,
    }


def _add(total: dict[str, int], part: dict[str, int], times: int = 1) -> None:
    for key, value in part.items():
        total[key] = total.get(key, 0) + value * times


def _encoder_stack(c: dict, s: int, d: int, layers: int, heads_width: int, ffn: int) -> dict[str, int]:
    parts: dict[str, int] = {}
    _add(parts, _attention(s, s, d, heads_width, heads_width), layers)
    _add(parts, {"mlp": 2 * s * d * ffn}, layers)
    return parts


def bert_like(spec: ModelSpec, w: Workload, c: dict) -> AnalyticCount:
    s = w.seq_len
    if spec.model_type == "distilbert":
        d, layers, ffn = c["dim"], c["n_layers"], c["hidden_dim"]
    else:
        d, layers, ffn = c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"]
    parts = _encoder_stack(c, s, d, layers, d, ffn)
    emb = c.get("embedding_size", d)
    if emb != d:  # ALBERT and ELECTRA-small project the embeddings up to the hidden width
        parts["embedding_projection"] = s * emb * d
    if spec.model_type in {"bert", "roberta", "albert", "megatron-bert"}:
        parts["pooler"] = d * d
    if spec.model_type == "deberta-v2":
        span = c.get("position_buckets", -1)
        span = span if span > 0 else c.get("max_relative_positions", -1)
        span = span if span > 0 else c["max_position_embeddings"]
        rel = 2 * span
        # Disentangled attention: project the relative embeddings with the key and query maps (shared),
        # then content-to-position and position-to-content scores.
        parts["relative_position"] = layers * (2 * rel * d * d + 2 * s * rel * d)
    formula = "encoder: L x (4 S d^2 + 2 S^2 d + 2 S d f)" + (
        " + disentangled attention" if spec.model_type == "deberta-v2" else ""
    )
    return _finish(parts, w, formula, per_sequence={"pooler"}, shared={"relative_position"})


def mobilebert(spec: ModelSpec, w: Workload, c: dict) -> AnalyticCount:
    """MobileBERT: a wide residual (d) around a narrow body (b): per layer, bottlenecks d -> b in (two when
    keys and queries share one), attention in b (values read from d unless bottlenecked), F stacked
    b -> f -> b FFNs, and a b -> d bottleneck out."""
    s = w.seq_len
    d, b, f = c["hidden_size"], c["true_hidden_size"], c["intermediate_size"]
    layers, ffns = c["num_hidden_layers"], c["num_feedforward_networks"]
    inner = c["intra_bottleneck_size"]
    emb = c["embedding_size"] * (3 if c.get("trigram_input", True) else 1)
    shared = c.get("key_query_shared_bottleneck", True)
    value_width = inner if c.get("use_bottleneck_attention", False) else d
    per_layer = {
        "bottlenecks": s * d * inner * (2 if shared else 1) + s * b * d,
        "attention_projections": s * b * b * 3 + s * value_width * b,
        "attention_scores": 2 * s * s * b,
        "mlp": ffns * 2 * s * b * f,
    }
    parts: dict[str, int] = {"embedding_projection": s * emb * d}
    _add(parts, per_layer, layers)
    if c.get("classifier_activation", False):
        parts["pooler"] = d * d
    formula = "MobileBERT: L x (S d b_in (1 or 2) + S b d + 3 S b^2 + S d_v b + 2 S^2 b + F 2 S b f) + S 3e d"
    return _finish(parts, w, formula, per_sequence={"pooler"})


def decoder(spec: ModelSpec, w: Workload, c: dict) -> AnalyticCount:
    s = w.seq_len
    t = spec.model_type
    if t == "gpt2":
        d, layers, heads = c["n_embd"], c["n_layer"], c["n_head"]
        ffn = c.get("n_inner") or 4 * d
        kv_heads, gated = heads, False
    else:
        d, layers, heads = c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"]
        ffn = c.get("ffn_dim") or c.get("intermediate_size")
        kv_heads = c.get("num_key_value_heads") or heads
        gated = t in {"llama", "mistral", "qwen2", "mixtral"}
    head_dim = c.get("head_dim") or d // heads
    parts: dict[str, int] = {}
    _add(parts, _attention(s, s, d, heads * head_dim, kv_heads * head_dim), layers)
    mlp = (3 if gated else 2) * s * d * ffn
    routing = (c.get("num_experts_per_tok"), c.get("num_local_experts")) if t == "mixtral" else None
    if routing:
        top_k, experts = routing
        _add(parts, {"mlp": top_k * mlp, "router": s * d * experts}, layers)
    else:
        _add(parts, {"mlp": mlp}, layers)
    if t == "opt" and c.get("word_embed_proj_dim", d) != d:
        parts["embedding_projection"] = 2 * s * d * c["word_embed_proj_dim"]
    emb = c.get("word_embed_proj_dim", d) if t == "opt" else d
    parts["lm_head"] = s * emb * c["vocab_size"]
    formula = f"decoder: L x (S d (2 d_q + 2 d_kv) + 2 S^2 d_q + {3 if gated else 2} S d f) + S d V"
    if routing:
        formula += f"; MoE: top-{routing[0]} of {routing[1]} experts per token + router"
    return _finish(parts, w, formula)


def seq2seq(spec: ModelSpec, w: Workload, c: dict) -> AnalyticCount:
    s = w.seq_len
    if spec.model_type == "bart":
        d, ffn_e, ffn_d = c["d_model"], c["encoder_ffn_dim"], c["decoder_ffn_dim"]
        enc_layers, dec_layers = c["encoder_layers"], c["decoder_layers"]
        inner = d
        gated = False
    else:  # t5, switch_transformers
        d, inner = c["d_model"], c["num_heads"] * c["d_kv"]
        ffn_e = ffn_d = c["d_ff"]
        enc_layers = c["num_layers"]
        dec_layers = c.get("num_decoder_layers") or enc_layers
        gated = str(c.get("feed_forward_proj", "relu")).startswith("gated")
    mlp_e = (3 if gated else 2) * s * d * ffn_e
    mlp_d = (3 if gated else 2) * s * d * ffn_d
    parts: dict[str, int] = {}
    _add(parts, _attention(s, s, d, inner, inner), enc_layers + dec_layers)
    _add(parts, _attention(s, s, d, inner, inner), dec_layers)  # cross-attention (encoder length = S)
    if spec.model_type == "switch_transformers":
        experts = c["num_experts"]
        sparse_e = _sparse_layers(enc_layers, c.get("encoder_sparse_step", 1))
        sparse_d = _sparse_layers(dec_layers, c.get("decoder_sparse_step", 1))
        _add(parts, {"mlp": mlp_e}, enc_layers)
        _add(parts, {"mlp": mlp_d}, dec_layers)
        parts["router"] = s * d * experts * (sparse_e + sparse_d)
    else:
        _add(parts, {"mlp": mlp_e}, enc_layers)
        _add(parts, {"mlp": mlp_d}, dec_layers)
    parts["lm_head"] = s * d * c["vocab_size"]
    formula = "encoder-decoder: encoder L_e x layer + decoder L_d x (layer + cross-attention) + S d V"
    if spec.model_type == "switch_transformers":
        formula += "; sparse layers: top-1 expert per token + router"
    return _finish(parts, w, formula)


def _sparse_layers(layers: int, step: int) -> int:
    """Switch places an MoE layer at every ``step``-th block, starting at block step-1."""
    return sum(1 for i in range(layers) if step > 0 and i % step == step - 1)


def vit(spec: ModelSpec, w: Workload, c: dict) -> AnalyticCount:
    d, layers, ffn, patch = c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"], c["patch_size"]
    patches = (w.image_size // patch) ** 2
    tokens = patches + 1
    channels = c.get("num_channels", 3)
    parts = _encoder_stack(c, tokens, d, layers, d, ffn)
    parts["patch_embedding"] = patches * channels * patch * patch * d
    parts["classifier"] = d * _labels(c)
    return _finish(
        parts,
        w,
        "ViT: (N+1 tokens) encoder + N x 3 p^2 d patch projection + d x labels head",
        per_sequence={"classifier"},
    )


def swin(spec: ModelSpec, w: Workload, c: dict) -> AnalyticCount:
    dim, patch, window = c["embed_dim"], c["patch_size"], c["window_size"]
    ratio = c.get("mlp_ratio", 4.0)
    side = w.image_size // patch
    parts: dict[str, int] = {"patch_embedding": side * side * c.get("num_channels", 3) * patch * patch * dim}
    for stage, depth in enumerate(c["depths"]):
        tokens = side * side
        layer = _attention(tokens, window * window, dim, dim, dim)
        # Windowed attention: keys per query are the window's, projections cover all tokens.
        layer["attention_projections"] = 4 * tokens * dim * dim
        layer["mlp"] = 2 * tokens * dim * int(dim * ratio)
        _add(parts, layer, depth)
        if stage < len(c["depths"]) - 1:
            parts["patch_merging"] = parts.get("patch_merging", 0) + (tokens // 4) * (4 * dim) * (2 * dim)
            side, dim = side // 2, dim * 2
    parts["classifier"] = dim * _labels(c)
    return _finish(
        parts,
        w,
        "Swin: per stage depth x (4 T C^2 + 2 T w^2 C + 2 T C 4C) + patch merging",
        per_sequence={"classifier"},
    )


def _labels(c: dict) -> int:
    """Classifier width: transformers' to_dict() keeps id2label, not num_labels."""
    return len(c["id2label"]) if c.get("id2label") else int(c.get("num_labels", 1000))


def _finish(
    parts: dict[str, int], w: Workload, formula: str, per_sequence=frozenset(), shared=frozenset()
) -> AnalyticCount:
    """Scale per-sequence parts by the batch; ``shared`` parts are computed once per batch."""
    scaled = {k: v if k in shared else v * w.batch_size for k, v in parts.items()}
    return AnalyticCount(macs=sum(scaled.values()), formula=formula, parts=scaled)


FORMULAS = {
    **dict.fromkeys(("bert", "roberta", "albert", "electra", "distilbert", "deberta-v2", "megatron-bert"), bert_like),
    **dict.fromkeys(("gpt2", "opt", "gpt_neox", "llama", "mistral", "qwen2", "phi", "mixtral"), decoder),
    **dict.fromkeys(("t5", "bart", "switch_transformers"), seq2seq),
    **dict.fromkeys(("vit", "deit"), vit),
    "swin": swin,
    "mobilebert": mobilebert,
}


def analytic_count(spec: ModelSpec, workload: Workload, config: dict | None = None) -> AnalyticCount | None:
    """The closed form for this family at this workload, or None when we have no formula (CNNs, MobileBERT)
    or the config's sizes give a negative or non-whole part.

    ``config`` is the full config (transformers' ``to_dict()``, defaults filled); the spec's own values
    are used when it is not given."""
    formula = FORMULAS.get(spec.model_type)
    if formula is None or spec.task == "seq2seq-lm" and formula is not seq2seq:
        return None
    count = formula(spec, workload, config if config is not None else spec.config)
    # A hostile config (a negative depth or width) must never come out as a negative count: no closed form then.
    return count if all(isinstance(v, int) and v >= 0 for v in count.parts.values()) else None
