"""The paper's own experiments: Dehghani, Arnab, Beyer, Vaswani and Tay, "The Efficiency Misnomer" (ICLR 2022,
arXiv 2110.12894v2), rebuilt from Hugging Face configurations and measured here.

Two of its demonstrations that cost indicators disagree:

- ``paper-transformers``: a standard Transformer, a Universal Transformer (one layer's weights reused at every
  depth) and a Switch Transformer (sparse experts) compared on parameters, FLOPs and speed;
- ``paper-vit-scaling``: a ViT scaled in depth or in width.

What the paper reports, and where, is in :data:`PAPER_SAYS`. The paper's own configurations (its Appendix A,
Table 2) and the numbers it measured could not be read while this module was written (only quotations
of the paper with their pages were at hand): the configurations here are ours, each derived from a published
catalog model and stated, and no number of the paper is shown. Every sentence says so rather than guess.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from efficiency.analysis.findings import strongest
from efficiency.analysis.rankings import INDICATORS
from efficiency.charts.compare import relative_bars, scatter
from efficiency.experiments.base import Analysis, Experiment, Progress, fmt, ratio, verdict_analysis
from efficiency.experiments.comparisons import collect_models, measured
from efficiency.experiments.measure import resolve_all, sources_for
from efficiency.experiments.sweeps import QUICK, TIMING, sweep_rows
from efficiency.specs import ModelSpec, Workload

PAPER = 'Dehghani et al., "The Efficiency Misnomer", ICLR 2022 (arXiv 2110.12894v2)'


@dataclass(frozen=True)
class PaperSays:
    """One statement of the paper, in our words, with where it stands in the paper (v2 PDF page and section)."""

    text: str
    where: str

    def cited(self) -> str:
        """ "what it says (arXiv 2110.12894v2, p. 8)": the paper is named once, in the experiment's description."""
        return f"{self.text} (arXiv 2110.12894v2, {self.where.split(',')[0]})"


PAPER_SAYS = {
    "flops-ignore-parallelism": PaperSays(
        "theoretical FLOPs ignore practical factors such as which parts of a model can run in parallel",
        "p. 3, A Primer on Cost Indicators",
    ),
    "vit-setup": PaperSays(
        "its ViT depth and width scaling was trained with Scenic on 64 TPU-v3 chips, with the exact configurations "
        "in its Appendix A (Table 2) and every other hyper-parameter at the referenced papers' defaults; which "
        "architecture looks better depends on the cost indicator",
        "p. 6, Potential disagreement between cost indicators",
    ),
    "sparse-parameter-matching": PaperSays(
        "parameter-matched comparisons do not make sense for sparse models and unfairly downplay their strengths",
        "p. 8, The issues with parameter matched comparisons",
    ),
}
NOT_READ = (
    "The paper's own configurations and the numbers it measured could not be read for this dashboard, "
    "so none is shown: the configurations here are ours, derived from published models, and every number is "
    "counted or measured here."
)


def derived_spec(base: ModelSpec, ident: str, name: str, config: dict[str, Any], note: str) -> ModelSpec:
    """A custom configuration built on a catalog model's (``config`` overrides its values)."""
    return replace(
        base,
        id=ident,
        name=name,
        hf_id=None,
        aliases=(),
        config={**base.config, **config},
        note=note,
        source="efficiency.experiments.paper",
        published={},
        origin="experiment",
    )


# ---- paper-transformers ----------------------------------------------------------------------------------

UT_BASE = "Universal Transformer (base)"
UT_MATCHED = "Universal Transformer (BERT-base parameters)"


def universal_transformer(base_id: str, bert_id: str, hidden: int, heads: int, name: str) -> ModelSpec:
    """A Universal Transformer as an ALBERT configuration: one layer's weights reused at all 12 depths, with
    BERT-base's vocabulary and an unfactorised embedding (embedding size = hidden size). UT's adaptive halting
    and per-step embeddings are left out: they change neither the parameter count much nor the FLOPs."""
    albert, bert = resolve_all([base_id, bert_id])
    config = {
        "vocab_size": bert.config["vocab_size"],
        "hidden_act": bert.config["hidden_act"],
        "embedding_size": hidden,
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "intermediate_size": 4 * hidden,
        "num_hidden_layers": bert.config["num_hidden_layers"],
        "num_hidden_groups": 1,
        "inner_group_num": 1,
    }
    note = f"{name}: an ALBERT-style shared-layer encoder standing for a Universal Transformer (no halting)."
    return derived_spec(albert, f"universal-transformer-H{hidden}", name, config, note)


def transformer_specs(setup: dict[str, Any]) -> list[ModelSpec]:
    """The standard models from the catalog, then the Universal Transformers built from ``setup["universal"]``
    (``[hidden, heads, name]`` each)."""
    specs = resolve_all(setup["models"])
    for hidden, heads, name in setup.get("universal", []):
        specs.append(universal_transformer(setup["albert"], setup["bert"], hidden, heads, name))
    return specs


def _collect_transformers(setup: dict[str, Any], progress: Progress) -> tuple[pd.DataFrame, dict[str, str]]:
    """The timed models (the dense encoder and its shared-layer copies), then the counted-only ones."""
    timed = collect_models(setup, lambda f, m: progress(0.8 * f, m), specs=transformer_specs(setup))
    counted_setup = {**setup, "measure": False}
    counted = collect_models(counted_setup, lambda f, m: progress(0.8 + 0.2 * f, m), specs=counted_specs(setup))
    data = pd.concat([timed[0], counted[0]], ignore_index=True)
    return data, {**counted[1], **timed[1]}


def counted_specs(setup: dict[str, Any]) -> list[ModelSpec]:
    """Models counted, not timed: a Switch Transformer with random weights routes tokens by accident (its
    experts' load and dropped tokens are not a trained router's), so its time here would not be its time."""
    return resolve_all(setup.get("counted_only", []))


def _role(row: pd.Series) -> str:
    """What sets a row apart from a standard Transformer, read from its counts (not from its name)."""
    if row.params_as_used > row.params * 1.02:
        return "shares its layers' weights"
    if row.params_active < row.params * 0.98:
        return "routes each token to one expert"
    return "standard"


def _analyse_transformers(data: pd.DataFrame) -> Analysis:
    indicators = [c for c in ("params", "flops", "latency_ms") if c in data.columns and data[c].notna().any()]
    rows = data.set_index("model")
    parts = []
    for model, row in rows.iterrows():
        role = _role(row)
        if role == "standard":
            continue
        stored, used = fmt("params", row.params), fmt("params", row.params_as_used)
        active = fmt("params", row.params_active)
        if role.startswith("shares"):
            parts.append(f"{model} stores {stored} but runs {used} per token: it {role}.")
        else:
            parts.append(f"{model} stores {stored}, of which a token passes through {active}: it {role}.")
    found = strongest(data, "model", indicators, needs=["latency_ms"] if measured(data) else ())
    if found is not None:
        a, b = rows.loc[found.a], rows.loc[found.b]
        others = ", ".join(f"{ratio(a[c], b[c])} its {INDICATORS[c].phrase}" for c in indicators[1:])
        parts.append(f"{found.a} has {ratio(a.params, b.params)} the parameters of {found.b}, and {others}.")
    untimed = data.loc[data["latency_ms"].isna(), "model"] if "latency_ms" in data.columns else data["model"]
    if len(untimed):
        parts.append(
            f"Counted, not timed: {', '.join(untimed)} (a Switch Transformer with random weights routes tokens by "
            "accident, so its time here would not be a trained model's)."
        )
    parts.append(
        f"The paper compared these three kinds of model on parameters, FLOPs and speed, and notes that "
        f"{PAPER_SAYS['sparse-parameter-matching'].cited()}. {NOT_READ}"
    )
    return verdict_analysis(" ".join(parts), found, "every indicator ordered these models the same way", data)


def _figure_transformers(data: pd.DataFrame, presentation: bool) -> go.Figure:
    """Parameters against FLOPs, counted for every model: sharing moves a model left, experts move it right,
    and neither moves its FLOPs (latency, timed for some models only, is in the notice and the table)."""
    return scatter(data, "params", "flops", presentation=presentation)


PAPER_TRANSFORMERS = Experiment(
    name="paper-transformers",
    title="The paper's Transformer, Universal Transformer and Switch Transformer",
    description=(
        f"A demonstration of {PAPER}, rebuilt: a standard Transformer (BERT-base; T5-base), a Universal "
        "Transformer (BERT-base's shape with one layer's weights reused at all 12 depths, and one widened to "
        "BERT-base's parameter count) and a Switch Transformer (Switch-Base-8, T5-base with 8 experts), on "
        "parameters and FLOPs, with latency measured for the BERT-shaped encoders (a Switch with random weights "
        "routes tokens by accident, so it is counted, not timed). The paper's own numbers for this comparison "
        "could not be read, so none is shown here."
    ),
    default={
        "models": ["bert-base-uncased"],
        "counted_only": ["t5-base", "google/switch-base-8"],
        "albert": "albert-base-v2",
        "bert": "bert-base-uncased",
        "universal": [[768, 12, UT_BASE], [1920, 30, UT_MATCHED]],
        "seq_len": 32,  # short: the parameter-matched Universal Transformer costs 6x BERT-base's FLOPs
        **TIMING,
    },
    quick={
        "models": ["electra-small-discriminator"],
        "albert": "albert-base-v2",
        "bert": "bert-base-uncased",
        "universal": [[64, 2, "Universal Transformer (tiny)"]],
        "counted_only": ["t5-small"],
        "seq_len": 8,
        **QUICK,
    },
    collect=_collect_transformers,
    analyse=_analyse_transformers,
    figure=_figure_transformers,
    measures="counted; latency measured on this CPU for the dense and shared-layer encoders",
)


# ---- paper-vit-scaling ----------------------------------------------------------------------------------


def vit_specs(base_id: str, shapes: list[list[int]]) -> list[ModelSpec]:
    """ViTs built on ``base_id``'s configuration with ``[layers, hidden, heads]`` each, MLP 4 x hidden."""
    (base,) = resolve_all([base_id])
    specs = []
    for layers, hidden, heads in shapes:
        config = {
            "num_hidden_layers": layers,
            "hidden_size": hidden,
            "num_attention_heads": heads,
            "intermediate_size": 4 * hidden,
        }
        name = f"ViT {layers} layers x {hidden} wide"
        note = f"{name}: {base.display_name} scaled in depth or width for the paper's ViT scaling experiment."
        specs.append(derived_spec(base, f"vit-L{layers}-H{hidden}", name, config, note))
    return specs


def _collect_vit(setup: dict[str, Any], progress: Progress) -> tuple[pd.DataFrame, dict[str, str]]:
    specs = vit_specs(setup["base"], setup["shapes"])
    workload = Workload(batch_size=setup.get("batch_size", 1), image_size=setup["image_size"])
    data = sweep_rows(setup, progress, specs, [workload], None)
    data["layers"] = [s.config["num_hidden_layers"] for s in specs]
    data["hidden_size"] = [s.config["hidden_size"] for s in specs]
    base_layers, base_hidden = setup["reference"]
    data["scaled"] = [
        "reference" if (n, h) == (base_layers, base_hidden) else ("depth" if h == base_hidden else "width")
        for n, h in zip(data["layers"], data["hidden_size"])
    ]
    return data, sources_for(data.columns, layers="setup", hidden_size="setup", scaled="setup", point="setup")


def _analyse_vit(data: pd.DataFrame) -> Analysis:
    indicators = [c for c in ("params", "flops", "latency_ms") if c in data.columns and data[c].notna().any()]
    deep = data[data["scaled"] != "width"].sort_values("layers")
    wide = data[data["scaled"] != "depth"].sort_values("hidden_size")
    parts = []
    for kind, part in (("depth", deep), ("width", wide)):
        if len(part) >= 2:
            first, last = part.iloc[0], part.iloc[-1]
            params = f"go from {fmt('params', first.params)} to {fmt('params', last.params)}"
            flops = f"from {fmt('flops', first.flops)} to {fmt('flops', last.flops)}"
            parts.append(
                f"Scaling {kind}: from {first.model} to {last.model}, parameters {params} and FLOPs {flops}"
                + (
                    f", measured latency from {fmt('latency_ms', first.latency_ms)} to "
                    f"{fmt('latency_ms', last.latency_ms)}."
                    if measured(data)
                    else "."
                )
            )
    found = strongest(data, "model", indicators, needs=["latency_ms"] if measured(data) else ())
    if not measured(data):
        parts.append("Latency was not measured in this run (static counts only).")
    parts.append(
        f"The paper says {PAPER_SAYS['vit-setup'].cited()}; and that "
        f"{PAPER_SAYS['flops-ignore-parallelism'].cited()}. One CPU thread runs the layers one after the other "
        f"whatever their width, so the parallelism a TPU offers wide layers is not tested here. {NOT_READ}"
    )
    return verdict_analysis(
        " ".join(parts), found, "parameters, FLOPs and latency ranked these ViTs the same way", data
    )


def _figure_vit(data: pd.DataFrame, presentation: bool) -> go.Figure:
    reference = str(data.loc[data["scaled"] == "reference", "model"].iloc[0])
    indicators = [c for c in ("params", "flops", "latency_ms", "peak_memory_bytes") if measured(data, c)]
    return relative_bars(data, reference, indicators, presentation=presentation)


PAPER_VIT_SCALING = Experiment(
    name="paper-vit-scaling",
    title="The paper's ViT scaling: deeper or wider?",
    description=(
        f"A demonstration of {PAPER}, rebuilt: ViT-B/16 (12 layers x 768) made shallower or deeper (6, 24 "
        "layers) and narrower or wider (384, 1088; 1088 gives 12 layers the parameters of 24 x 768), one 224 px "
        "image each: parameters, FLOPs and measured latency. The paper trained its ViTs with Scenic on 64 TPU-v3 "
        "chips (p. 6); its configurations (Appendix A, Table 2) and numbers could not be read, so none is shown here."
    ),
    default={
        "base": "google/vit-base-patch16-224",
        "reference": [12, 768],
        "shapes": [[6, 768, 12], [12, 768, 12], [24, 768, 12], [12, 384, 6], [12, 1088, 17]],
        "image_size": 224,
        **TIMING,
    },
    quick={
        "base": "google/vit-base-patch16-224",
        "reference": [2, 64],
        "shapes": [[2, 64, 2], [4, 64, 2], [2, 96, 2]],
        "image_size": 32,
        **QUICK,
    },
    collect=_collect_vit,
    analyse=_analyse_vit,
    figure=_figure_vit,
)
