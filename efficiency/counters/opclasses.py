"""What each aten op does, for counting: matrix work, small elementwise arithmetic, or pure data movement.

Matrix work (matmuls, convolutions, attention) is the headline FLOP count. Elementwise arithmetic (norms,
softmax, activations, adds) is counted separately by a stated convention, never mixed in. Views move no
data. An op in none of these sets is listed as uncounted, never dropped.
"""

from __future__ import annotations

# Ops that only reinterpret a tensor's metadata: no bytes move.
VIEW_OPS = frozenset(
    """view _unsafe_view reshape _reshape_alias t transpose permute expand expand_as slice select squeeze
    unsqueeze detach alias as_strided split split_with_sizes unbind chunk narrow unfold view_as lift_fresh
    diagonal movedim numpy_T real imag""".split()
)

# Ops that move or create data but do no arithmetic (their bytes count as traffic, no FLOPs).
MOVEMENT_OPS = frozenset(
    """clone copy _to_copy contiguous cat stack embedding index_select gather index scatter index_put
    _unsafe_index fill zero zeros ones empty empty_like empty_strided full full_like zeros_like ones_like
    arange new_zeros new_ones new_empty new_full repeat constant_pad_nd pad tril triu flip roll
    lift_fresh_copy scalar_tensor bernoulli uniform normal rand randn randint masked_fill where
    one_hot _local_scalar_dense resize _unsafe_view_copy slice_scatter select_scatter as_strided_scatter
    expand_copy new_empty_strided split_with_sizes_copy unbind_copy embedding_dense_backward index_add _index_put_impl
    _assert_async _assert_tensor_metadata""".split()
)

# Elementwise or reduction arithmetic: FLOPs = factor x elements (output elements; input for reductions).
ELEMENTWISE_FACTORS: dict[str, float] = {
    **dict.fromkeys(
        """add sub mul div neg rsub reciprocal abs sign clamp clamp_min clamp_max minimum maximum
        eq ne lt le gt ge logical_not logical_and logical_or bitwise_and bitwise_or bitwise_not
        relu threshold leaky_relu hardtanh addcmul addcdiv lerp square ceil floor round trunc scatter_add
        frac fmod remainder floor_divide""".split(),
        1.0,
    ),
    **dict.fromkeys("sqrt rsqrt exp log log1p pow sigmoid tanh erf sin cos hardswish hardsigmoid".split(), 2.0),
    **dict.fromkeys("gelu silu mish softplus elu".split(), 4.0),
    **dict.fromkeys("native_layer_norm _softmax _safe_softmax _log_softmax softmax native_group_norm".split(), 5.0),
    "_weight_norm_interface": 3.0,  # w = g v / ||v||: square-sum over v, then one scale per weight
    **dict.fromkeys(
        """native_batch_norm _native_batch_norm_legit _native_batch_norm_legit_no_training
        _native_batch_norm_legit_functional""".split(),
        2.0,
    ),
    **dict.fromkeys(
        """sum mean var var_mean std amax amin max min argmax argmin topk sort cumsum prod norm
        linalg_vector_norm any all logsumexp avg_pool2d adaptive_avg_pool2d _adaptive_avg_pool2d
        max_pool2d_with_indices upsample_bicubic2d upsample_bilinear2d upsample_nearest2d
        _upsample_bicubic2d_aa nll_loss_forward nll_loss2d_forward mse_loss""".split(),
        1.0,
    ),
}
REDUCTION_OPS = frozenset(
    """sum mean var var_mean std amax amin max min argmax argmin prod norm linalg_vector_norm any all
    logsumexp avg_pool2d adaptive_avg_pool2d _adaptive_avg_pool2d max_pool2d_with_indices
    nll_loss_forward nll_loss2d_forward mse_loss topk sort""".split()
)
# Ops with no tensor output worth tracing (metadata queries).
IGNORED_OPS = frozenset("device sym_size sym_stride sym_numel is_contiguous stride size dim numel".split())

# fvcore's jit op names for lookups, data movement and elementwise arithmetic: not matrix work, so
# fvcore skipping them is not a gap in its matrix count.
FVCORE_NOT_MATRIX = frozenset(
    f"aten::{name}"
    for name in """add add_ sub sub_ mul mul_ div div_ rsub neg gelu gelu_ silu silu_ relu relu_ tanh tanh_
    sigmoid softmax log_softmax layer_norm batch_norm group_norm rsqrt sqrt pow exp erf mean sum var
    clamp clamp_ hardtanh hardtanh_ hardswish hardswish_ minimum maximum ne eq lt gt le ge abs
    reciprocal max min argmax where masked_fill masked_fill_ cumsum upsample_bicubic2d
    adaptive_avg_pool2d avg_pool2d max_pool2d norm dropout dropout_ feature_dropout
    _upsample_bicubic2d_aa square log one_hot topk sort any all sin cos embedding new_ones new_zeros diff
    index_select scatter scatter_ scatter_add index_add index_add_ repeat_interleave zeros_like ones_like
    fill_ zero_ bernoulli_ type_as view_as flip roll tril triu _weight_norm""".split()
)


def base_name(packet_name: str) -> str:
    """``aten.add_`` -> ``add``: in-place and functional variants do the same arithmetic."""
    name = packet_name.split(".", 1)[-1]
    return name[:-1] if name.endswith("_") and not name.startswith("_") else name.rstrip("_") or name


def classify(name: str) -> str:
    """One of "view", "movement", "elementwise", "backward-elementwise", "ignored", "unknown"."""
    if name in IGNORED_OPS:
        return "ignored"
    if name in VIEW_OPS:
        return "view"
    if name in MOVEMENT_OPS:
        return "movement"
    if name in ELEMENTWISE_FACTORS:
        return "elementwise"
    if name.endswith("_backward") or name.endswith("_backward_data"):
        return "backward-elementwise"
    return "unknown"
