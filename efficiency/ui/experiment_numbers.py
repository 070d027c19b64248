"""An experiment's numbers as a table a person reads: labelled columns, one unit per column, no internal ids.

The run keeps raw, unit-named columns (``latency_ms``, ``peak_memory_bytes``) for the CLI's JSON; this module
only relabels and scales them for the page, with the labels and units of Compare's table (``views.TABLE_UNITS``)
and :func:`efficiency.units.scale`, so a number reads the same on every page.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from efficiency import units
from efficiency.experiments import Experiment
from efficiency.ui.common import display_name
from efficiency.ui.views import TABLE_UNITS

# column -> (label, unit before scaling: units.scale picks k/M/G or KiB/MiB/GiB from the column's median)
SCALED = {
    **{column: (label, unit) for column, (label, unit, _) in TABLE_UNITS.items()},
    "macs": ("MACs", "MACs"),
    "attention_flops": ("Attention FLOPs", "FLOPs"),
    "params_as_used": ("Parameters as used", " params"),
    "latency_p10_ms": ("Latency p10", "ms"),
    "latency_p90_ms": ("Latency p90", "ms"),
    "latency_per_item_ms": ("Latency per item", "ms"),
    "training_step_p10_ms": ("Training step p10", "ms"),
    "training_step_p90_ms": ("Training step p90", "ms"),
    "peak_memory_training_bytes": ("Peak memory, training", "B"),
    "training_flops_per_token": ("Training FLOPs per token", "FLOPs"),
    "training_run_flops": ("Training FLOPs, whole run", "FLOPs"),
    "training_tokens": ("Training tokens", " tokens"),
    "request_time_ms": ("Time per request, estimated", "ms"),
}
# column -> label, for setup values and plain numbers (the unit is in the label where there is one)
PLAIN = {
    "model": "Model",
    "point": "Setup",
    "hardware": "Hardware",
    "dtype": "Data type",
    "batch_size": "Batch size (items)",
    "seq_len": "Sequence length (tokens)",
    "image_size": "Image size (px)",
    "patch_size": "Patch size (px)",
    "tokens": "Tokens (count)",
    "measured": "Measured (on the run's machine)",
    "layers": "Layers (count)",
    "hidden_size": "Width (hidden size)",
    "scaled": "Scaled in",
    "experts": "Experts per sparse layer (count)",
    "latency_samples": "Timed runs (count)",
    "attention_share_pct": "Attention share of FLOPs (%)",
    "arithmetic_intensity_flops_per_byte": "Arithmetic intensity (FLOPs/byte)",
    "bound": "Bound by (estimated)",
    "train_seq_len": "Training sequence length (tokens)",
    "train_batch_size": "Training step (sequences)",
    "training_tokens_source": "Training tokens: source",
    "retrain_every_requests": "Retrained every (requests)",
    "training_time_s": "Training time, estimated (s)",
}
SUFFIX_UNITS = {"_per_s": "per s", "_ms": "ms", "_s": "s", "_pct": "%", "_bytes": "bytes"}  # longest first
HIDDEN = {"model_id", "hardware_id"}  # internal ids: in the CLI's JSON, never on the page


def hidden(data: pd.DataFrame, column: str) -> bool:
    """Internal ids, and a setup column that only repeats the model's name, stay off the page."""
    return column in HIDDEN or (column == "point" and column in data and data["point"].equals(data.get("model")))


def column_label(column: str, values: pd.Series | None = None) -> str:
    """ "Latency (ms)", "Parameters (M params)", "Layers (count)": a column's label with its unit."""
    if column in SCALED:
        label, unit = SCALED[column]
        numbers = pd.to_numeric(values, errors="coerce").dropna() if values is not None else pd.Series(dtype=float)
        _, scaled_unit = units.scale(float(numbers.median()) if len(numbers) else None, unit)
        return f"{label} ({scaled_unit.strip()})"
    if column in PLAIN:
        return PLAIN[column]
    for suffix, unit in SUFFIX_UNITS.items():  # a column added later still shows its unit
        if column.endswith(suffix):
            return f"{column.removesuffix(suffix).replace('_', ' ').capitalize()} ({unit})"
    return column.replace("_", " ").capitalize()


def numbers_table(data: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The table shown and its column configuration: scaled numbers keep a numeric, sortable column."""
    shown, config = pd.DataFrame(index=data.index), {}
    for column in data.columns:
        if hidden(data, column):
            continue
        label = column_label(column, data[column])
        if column in SCALED:
            numbers = pd.to_numeric(data[column], errors="coerce")
            factor, _ = units.scale(float(numbers.median()) if numbers.notna().any() else None, SCALED[column][1])
            shown[label] = numbers / factor
            largest = float(shown[label].abs().max()) if shown[label].notna().any() else 0.0
            digits = 2 if largest < 10 else 1 if largest < 1000 else 0
            config[label] = st.column_config.NumberColumn(label, format=f"%.{digits}f")
        else:
            shown[label] = data[column]
    return shown, config


def sources_table(data: pd.DataFrame, sources: dict[str, str]) -> pd.DataFrame:
    """Where each shown column comes from, under the same labels as the numbers table."""
    rows = [(column_label(c, data.get(c)), s) for c, s in sources.items() if not hidden(data, c)]
    return pd.DataFrame(rows, columns=["Column", "Source"])


def render_numbers(data: pd.DataFrame, sources: dict[str, str]) -> None:
    """The numbers table and the sources table, as the Experiments page shows them."""
    shown, config = numbers_table(data)
    st.dataframe(shown, hide_index=True, column_config=config, placeholder="n/a")
    st.dataframe(sources_table(data, sources), hide_index=True)


def knob_inputs(experiment: Experiment, quick: bool) -> dict[str, Any]:
    """The experiment's settings for a live run (its ``knobs``), prefilled from its setup, folded away: only what
    the person changed is returned, so the run's setup says what was asked."""
    if not experiment.knobs:
        return {}
    setup = experiment.setup(quick)
    changed: dict[str, Any] = {}
    with st.expander("Settings of a live run"):
        for knob in experiment.knobs:
            if not knob.per_model:
                current = float(setup.get(knob.key) or 0)
                value = st.number_input(
                    knob.label, min_value=knob.minimum, value=current, help=knob.help, format="%g",
                    key=f"exp_knob_{experiment.name}_{knob.key}_{quick}",
                )  # fmt: skip
                if value != current:
                    changed[knob.key] = int(value) if float(value).is_integer() else value
                continue
            given = {}
            for model in setup.get("models", []):
                default = knob.default_for(model) if knob.default_for else None
                value = st.number_input(
                    knob.label.format(model=display_name(model)), min_value=knob.minimum, value=default,
                    help=knob.help, format="%g", key=f"exp_knob_{experiment.name}_{knob.key}_{model}",
                )  # fmt: skip
                if value is not None and value != default:
                    given[model] = value
            if given:
                changed[knob.key] = given
    return changed
