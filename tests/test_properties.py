"""Property tests (hypothesis) for facecore.verification.metrics: what must hold for every input, not just hand cases.

tests/test_metrics.py already checks self-distance symmetry, paired-vs-pairwise agreement, the AUC/EER
range, sweep monotonicity and the best threshold against brute force; these add the metric axioms
(symmetry across two sets, identity, triangle inequality, invariances), the ROC quantities against
their definitions, and monotonicity of every rate in the threshold.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from facecore.verification import metrics as m

PROPERTY = settings(max_examples=40, deadline=None, database=None)  # no .hypothesis/ in the repo
finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=64)
TRUE_METRICS = ("euclidean", "l1")  # the two that satisfy the triangle inequality


@st.composite
def same_shape(draw, count: int, min_rows: int = 1):
    """``count`` float64 arrays of one shape (rows, dims)."""
    shape = (draw(st.integers(min_rows, 6)), draw(st.integers(1, 8)))
    return [draw(arrays(np.float64, shape, elements=finite)) for _ in range(count)]


@st.composite
def labelled_distances(draw, min_size: int = 2, max_size: int = 40):
    """Distances on a 1/64 grid (exact in binary, so shifted or scaled copies keep their order and ties)
    with a label per pair; both classes present."""
    n = draw(st.integers(min_size, max_size))
    d = draw(arrays(np.int64, n, elements=st.integers(0, 256))) / 64.0
    same = draw(arrays(np.bool_, n))
    same[0], same[1] = True, False
    return d, same


def norms(a: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a, axis=1)


# ----------------------------------------------------------------------------- distances


@PROPERTY
@given(ab=same_shape(2), metric=st.sampled_from(m.METRICS))
def test_distances_are_symmetric_and_non_negative(ab, metric):
    a, b = ab
    paired = m.paired_distances(a, b, metric)
    np.testing.assert_array_equal(paired, m.paired_distances(b, a, metric))
    assert np.all(paired >= 0)
    full = m.pairwise_distances(a, b, metric)
    assert full.shape == (len(a), len(b)) and np.all(full >= 0)
    np.testing.assert_allclose(full, m.pairwise_distances(b, a, metric).T, rtol=1e-9, atol=1e-9)
    if metric == "cosine":
        assert np.all(paired <= 2) and np.all(full <= 2)


@PROPERTY
@given(ab=same_shape(1), metric=st.sampled_from(("euclidean", "sqeuclidean", "l1")))
def test_a_vector_is_at_distance_zero_from_itself(ab, metric):
    (a,) = ab
    np.testing.assert_array_equal(m.paired_distances(a, a.copy(), metric), 0.0)


@PROPERTY
@given(xyz=same_shape(3), metric=st.sampled_from(TRUE_METRICS))
def test_triangle_inequality(xyz, metric):
    x, y, z = xyz
    direct = m.paired_distances(x, z, metric)
    detour = m.paired_distances(x, y, metric) + m.paired_distances(y, z, metric)
    assert np.all(direct <= detour + 1e-9 * (1 + detour))


@PROPERTY
@given(ab=same_shape(2))
def test_euclidean_is_bounded_by_the_norms_and_squares_to_sqeuclidean(ab):
    a, b = ab
    d = m.paired_distances(a, b, "euclidean")
    tol = 1e-9 * (1 + norms(a) + norms(b))
    assert np.all(np.abs(norms(a) - norms(b)) <= d + tol) and np.all(d <= norms(a) + norms(b) + tol)
    np.testing.assert_allclose(d**2, m.paired_distances(a, b, "sqeuclidean"), rtol=1e-9, atol=1e-9)


@PROPERTY
@given(
    ab=same_shape(2),
    shift=arrays(np.float64, 8, elements=finite),
    metric=st.sampled_from(("euclidean", "sqeuclidean", "l1")),
)
def test_translation_does_not_change_euclidean_or_l1(ab, shift, metric):
    a, b = ab
    t = shift[: a.shape[1]]
    np.testing.assert_allclose(
        m.paired_distances(a + t, b + t, metric), m.paired_distances(a, b, metric), rtol=1e-7, atol=1e-7
    )


@PROPERTY
@given(ab=same_shape(2), scale=st.floats(1e-3, 1e3))
def test_cosine_ignores_length_and_opposites_are_two_apart(ab, scale):
    a, b = ab
    assume(np.all(norms(a) > 1e-3) and np.all(norms(b) > 1e-3))
    d = m.paired_distances(a, b, "cosine")
    np.testing.assert_allclose(m.paired_distances(scale * a, b, "cosine"), d, atol=1e-9)
    np.testing.assert_allclose(m.paired_distances(a, -a, "cosine"), 2.0, atol=1e-12)
    np.testing.assert_allclose(m.paired_distances(a, a, "cosine"), 0.0, atol=1e-12)


@PROPERTY
@given(ab=same_shape(2))
def test_on_unit_vectors_squared_euclidean_is_twice_cosine(ab):
    # Face embeddings are often L2-normalised: then the two metrics rank pairs the same way.
    a, b = ab
    assume(np.all(norms(a) > 1e-3) and np.all(norms(b) > 1e-3))
    a, b = a / norms(a)[:, None], b / norms(b)[:, None]
    np.testing.assert_allclose(
        m.paired_distances(a, b, "sqeuclidean"), 2 * m.paired_distances(a, b, "cosine"), atol=1e-9
    )


# ----------------------------------------------------------------------------- rates at a threshold


@PROPERTY
@given(pairs=labelled_distances(), threshold=st.floats(-1, 5))
def test_rates_add_up(pairs, threshold):
    d, same = pairs
    r = m.rates_at_threshold(d, same, threshold)
    assert r.tp + r.fn == same.sum() and r.fp + r.tn == (~same).sum()
    assert r.tp == np.sum(same & (d <= threshold)) and r.fp == np.sum(~same & (d <= threshold))
    for rate in (r.far, r.frr, r.tar, r.accuracy):
        assert 0.0 <= rate <= 1.0
    assert r.tar == pytest.approx(1 - r.frr)
    assert r.accuracy == pytest.approx((r.tp + r.tn) / d.size)


@PROPERTY
@given(pairs=labelled_distances(), thresholds=st.lists(st.floats(-1, 5), min_size=2, max_size=6))
def test_raising_the_threshold_accepts_more(pairs, thresholds):
    d, same = pairs
    rates = [m.rates_at_threshold(d, same, t) for t in sorted(thresholds)]
    for low, high in zip(rates, rates[1:], strict=False):
        assert low.far <= high.far and low.tar <= high.tar and low.frr >= high.frr
        assert low.tp <= high.tp and low.fp <= high.fp


@PROPERTY
@given(pairs=labelled_distances())
def test_sweep_rows_equal_rates_at_their_threshold(pairs):
    d, same = pairs
    sweep = m.threshold_sweep(d, same)
    for row in sweep.iloc[:: max(1, len(sweep) // 7)].itertuples():
        r = m.rates_at_threshold(d, same, row.threshold)
        assert (row.tp, row.fp, row.tn, row.fn) == (r.tp, r.fp, r.tn, r.fn)
        assert row.accuracy == pytest.approx(r.accuracy)


# ----------------------------------------------------------------------------- ROC, AUC, EER, TAR@FAR


@PROPERTY
@given(pairs=labelled_distances())
def test_auc_is_the_chance_a_genuine_pair_is_closer_than_an_impostor_pair(pairs):
    d, same = pairs
    genuine, impostor = d[same][:, None], d[~same][None, :]
    mann_whitney = np.mean((genuine < impostor) + 0.5 * (genuine == impostor))
    assert m.roc_auc(d, same) == pytest.approx(mann_whitney)


@PROPERTY
@given(
    pairs=labelled_distances(),
    scale=st.sampled_from([0.5, 2.0, 3.0]),
    offset=st.sampled_from([0.0, 1.5, -7.0]),
)
def test_roc_quantities_ignore_order_preserving_rescaling_and_shuffling(pairs, scale, offset):
    d, same = pairs
    order = np.random.default_rng(d.size).permutation(d.size)
    moved = scale * d + offset  # exact on the 1/64 grid, so no new ties
    assert m.roc_auc(moved[order], same[order]) == pytest.approx(m.roc_auc(d, same))
    assert m.equal_error_rate(moved, same)[0] == pytest.approx(m.equal_error_rate(d, same)[0])
    assert m.tar_at_far(moved, same, 0.1)[0] == pytest.approx(m.tar_at_far(d, same, 0.1)[0])


@PROPERTY
@given(pairs=labelled_distances())
def test_swapping_the_labels_mirrors_the_auc(pairs):
    d, same = pairs
    assert m.roc_auc(d, ~same) == pytest.approx(1 - m.roc_auc(d, same))


@PROPERTY
@given(pairs=labelled_distances())
def test_eer_lies_where_far_and_frr_cross(pairs):
    d, same = pairs
    eer, _ = m.equal_error_rate(d, same)
    far, tar, _ = m.roc(d, same)
    frr = 1 - tar
    # At every ROC point one of FAR and FRR is at least the EER and (at the crossing) one is at most it.
    assert np.max(np.minimum(far, frr)) - 1e-12 <= eer <= np.min(np.maximum(far, frr)) + 1e-12


@PROPERTY
@given(pairs=labelled_distances(), targets=st.lists(st.floats(0, 1), min_size=2, max_size=5))
def test_tar_at_far_keeps_its_promise_and_grows_with_the_target(pairs, targets):
    d, same = pairs
    found = []
    for target in sorted(targets):
        tar, threshold = m.tar_at_far(d, same, target)
        r = m.rates_at_threshold(d, same, threshold)
        assert r.far <= target + 1e-12 and r.tar == pytest.approx(tar)
        found.append(tar)
    assert found == sorted(found)


@PROPERTY
@given(
    genuine=arrays(np.int64, st.integers(1, 20), elements=st.integers(0, 100)),
    impostor=arrays(np.int64, st.integers(1, 20), elements=st.integers(101, 200)),
)
def test_separable_scores_are_perfect(genuine, impostor):
    d = np.concatenate([genuine, impostor]) / 64.0
    same = np.arange(d.size) < genuine.size
    assert m.roc_auc(d, same) == pytest.approx(1.0, abs=1e-12)  # sklearn's trapezoids may round to 1 - 1e-16
    assert m.equal_error_rate(d, same)[0] == 0.0
    assert m.tar_at_far(d, same, 0.0)[0] == 1.0
    assert m.rates_at_threshold(d, same, m.best_accuracy_threshold(d, same)).accuracy == 1.0


# ----------------------------------------------------------------------------- protocol and intervals


@PROPERTY
@given(pairs=labelled_distances(min_size=10), n_folds=st.integers(2, 5))
def test_kfold_summary_is_consistent(pairs, n_folds):
    d, same = pairs
    result = m.kfold_verification(d, same, n_folds=n_folds)
    assert result.fold_accuracies.size == n_folds == result.fold_thresholds.size
    assert np.all((result.fold_accuracies >= 0) & (result.fold_accuracies <= 1))
    assert result.accuracy == pytest.approx(result.fold_accuracies.mean())
    assert result.auc == pytest.approx(m.roc_auc(d, same))


@PROPERTY
@given(pairs=labelled_distances(min_size=4), threshold=st.floats(0, 4), seed=st.integers(0, 2**16))
def test_bootstrap_interval_is_ordered_bounded_and_reproducible(pairs, threshold, seed):
    d, same = pairs

    def accuracy(dd: np.ndarray, yy: np.ndarray) -> float:
        return m.rates_at_threshold(dd, yy, threshold).accuracy

    low, high = m.bootstrap_ci(d, same, accuracy, n_boot=50, seed=seed)
    assert 0.0 <= low <= high <= 1.0
    assert (low, high) == m.bootstrap_ci(d, same, accuracy, n_boot=50, seed=seed)
