"""Tiny model configs the tests build in milliseconds (random weights; only shapes matter)."""

from __future__ import annotations


def tiny_bert_config(layers: int = 2) -> dict:
    """A 2-head BERT, 32 wide, 64 positions: a few hundred thousand parameters at most."""
    return {
        "model_type": "bert",
        "hidden_size": 32,
        "num_hidden_layers": layers,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "vocab_size": 512,
        "max_position_embeddings": 64,
    }
