"""The pickers Compare and Hardware share: the catalog's models, grouped by family, and the workload inputs.

The catalog's labels are cached (``st.cache_data``): they depend on the catalog files only. The workload
inputs keep their values in session state under ``<prefix>_batch`` ... so that a page reads them back as a
:class:`~efficiency.specs.Workload` (``workload_from_state``), with a bad value shown, never raised.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import streamlit as st

from efficiency.models import catalog
from efficiency.results import IMPLEMENTATIONS, implementation_label
from efficiency.specs import DTYPES, MAX_AUDIO_SECONDS, MAX_BATCH_SIZE, MAX_IMAGE_SIZE, MAX_SEQ_LEN, Workload
from efficiency.ui.common import escape_md, one_line

FAMILY_GROUPS = ("encoder", "decoder", "encoder-decoder", "vision-transformer", "cnn")
GROUP_LABELS = {"vision-transformer": "vision transformer", "cnn": "CNN"}
QUALIFIERS = {"sparse-moe": "sparse MoE", "parameter-shared": "parameter-shared"}


def _group(families: Iterable[str]) -> str:
    group = next((f for f in FAMILY_GROUPS if f in families), "other")
    extra = [QUALIFIERS[f] for f in families if f in QUALIFIERS]
    return ", ".join([GROUP_LABELS.get(group, group), *extra])


@st.cache_data(show_spinner=False)
def catalog_labels() -> dict[str, str]:
    """Catalog id -> "BERT-base (uncased) · encoder", ordered by family group so similar models sit together."""
    specs = catalog.list_models()
    order = {g: i for i, g in enumerate(FAMILY_GROUPS)}

    def rank(spec: Any) -> int:
        return min((order[f] for f in spec.families if f in order), default=len(order))

    ordered = sorted(specs, key=rank)  # stable: keeps catalog order within a group
    return {spec.id: f"{spec.display_name} · {_group(spec.families)}" for spec in ordered}


def model_picker(key: str, help_text: str) -> None:
    """The searchable multi-select over the catalog, grouped by family in its labels.

    Without Streamlit's bulk "Select N matches" entry (``select_all=False``): it is the first option while a
    search is typed, so Enter would add every match (typing "BERT-base" added DistilBERT, RoBERTa, ALBERT ...);
    Enter now adds the one highlighted model."""
    labels = catalog_labels()
    st.multiselect(
        "Models from the catalog",
        list(labels),
        key=key,
        wrap=True,
        select_all=False,
        format_func=lambda model: labels.get(model, model),
        placeholder="Type to search: BERT, decoder, MoE, ViT, CNN …",
        help=help_text,
    )


def implementation_picker(key: str) -> None:
    """The implementations to measure, several at once: each model gets one row per implementation. Drawn for
    measured runs only: a static count is the model's arithmetic, the same under every float implementation."""
    st.multiselect(
        "Implementations",
        IMPLEMENTATIONS,
        key=key,
        wrap=True,
        format_func=implementation_label,
        placeholder="Pick one or more",
        help="The code that runs each model: eager (PyTorch eager, explicit attention), SDPA (PyTorch eager with its "
        "fused attention; the default), "
        "torch.compile, int8 dynamic quantization of the linear layers, ONNX Runtime. One row per model and "
        "implementation. Offered for measured runs only: parameters and FLOPs are the same under every float "
        "implementation (int8 counts its linear work apart), so static counts do not change.",
    )


def workload_defaults(prefix: str) -> None:
    """Start the ``workload_inputs`` of ``prefix`` at the default workload where this session has no value."""
    base = Workload()
    defaults = {
        "batch": base.batch_size,
        "seq": base.seq_len,
        "image": base.image_size,
        "audio": base.audio_seconds,
        "dtype": base.dtype,
    }
    for name, value in defaults.items():
        st.session_state.setdefault(f"{prefix}_{name}", value)


def workload_inputs(prefix: str) -> None:
    """Batch size, dtype, sequence length, image size and audio length, keyed ``<prefix>_batch`` ... (values in
    session state). Each model takes the fields of its modality; the result says which inputs it was given."""
    batch, dtype = st.columns(2)
    batch.number_input("Batch size", min_value=1, max_value=MAX_BATCH_SIZE, step=1, key=f"{prefix}_batch")
    dtype.selectbox("dtype", DTYPES, key=f"{prefix}_dtype")
    seq, image, audio = st.columns(3)
    seq.number_input("Seq length (tokens)", min_value=1, max_value=MAX_SEQ_LEN, step=64, key=f"{prefix}_seq")
    image.number_input("Image size (px)", min_value=8, max_value=MAX_IMAGE_SIZE, step=16, key=f"{prefix}_image")
    audio.number_input(
        "Audio (s)",
        min_value=0.1,
        max_value=MAX_AUDIO_SECONDS,
        step=1.0,
        format="%g",
        key=f"{prefix}_audio",
        help="Seconds of audio per item for speech models; the sampling rate comes from each model's config. A "
        "model with a fixed window (Whisper's 30 s) takes its window and says so.",
    )


def workload_from_state(prefix: str, mode: str = "inference") -> Workload | None:
    """The workload the ``workload_inputs`` of ``prefix`` hold, or None with the reason shown."""
    try:
        return Workload(
            batch_size=int(st.session_state[f"{prefix}_batch"]),
            seq_len=int(st.session_state[f"{prefix}_seq"]),
            image_size=int(st.session_state[f"{prefix}_image"]),
            audio_seconds=float(st.session_state.get(f"{prefix}_audio", Workload().audio_seconds)),
            dtype=st.session_state[f"{prefix}_dtype"],
            mode=mode,
        )
    except ValueError as problem:
        st.error(f"Workload: {escape_md(one_line(problem))}")
        return None
