"""facecore.verification.metrics: hand-checked small cases plus property tests."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from facecore.verification import metrics as m

PROPERTY = settings(max_examples=50, deadline=None, database=None)  # no .hypothesis/ in the repo
finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)

# Four 2-D vectors with easy distances: x=(1,0), y=(0,1), z=(3,4), w=(-1,0).
X, Y, Z, W = [1.0, 0.0], [0.0, 1.0], [3.0, 4.0], [-1.0, 0.0]
HAND = {  # rows x, y; columns z, w
    "euclidean": [[math.sqrt(20), 2.0], [math.sqrt(18), math.sqrt(2)]],
    "sqeuclidean": [[20.0, 4.0], [18.0, 2.0]],
    "l1": [[6.0, 2.0], [6.0, 2.0]],
    "cosine": [[1 - 3 / 5, 2.0], [1 - 4 / 5, 1.0]],
}


def matrices(min_rows: int = 1):
    shapes = st.tuples(st.integers(min_rows, 8), st.integers(1, 6))
    return shapes.flatmap(lambda shape: arrays(np.float64, shape, elements=finite))


@st.composite
def scored_pairs(draw):
    """Distances with a label per pair, both classes present."""
    n = draw(st.integers(2, 40))
    d = draw(arrays(np.float64, n, elements=st.floats(0, 4, allow_nan=False)))
    same = draw(arrays(np.bool_, n))
    same[0], same[1] = True, False
    return d, same


# ---------------------------------------------------------------------------------------------- distances


@pytest.mark.parametrize("metric", m.METRICS)
def test_hand_computed_distances(metric):
    expected = np.array(HAND[metric])
    np.testing.assert_allclose(m.pairwise_distances([X, Y], [Z, W], metric=metric), expected, atol=1e-12)
    np.testing.assert_allclose(m.paired_distances([X, Y], [Z, W], metric=metric), np.diag(expected), atol=1e-12)
    swapped = [expected[0, 1], expected[1, 0]]  # d(x, w), d(y, z)
    np.testing.assert_allclose(m.paired_distances([X, Y], [W, Z], metric=metric), swapped, atol=1e-12)


def test_pairwise_with_itself_is_exactly_symmetric_with_zero_diagonal():
    a = np.random.default_rng(0).normal(size=(50, 128))
    for metric in m.METRICS:
        d = m.pairwise_distances(a, metric=metric)
        assert d.shape == (50, 50) and d.dtype == np.float64
        assert np.array_equal(d, d.T)
        assert np.all(np.diag(d) == 0)


def test_cosine_of_zero_vector_is_one_in_both_functions():
    zero, v = [0.0, 0.0], [1.0, 2.0]
    assert m.pairwise_distances([zero], [v], metric="cosine")[0, 0] == 1.0
    assert m.paired_distances([zero], [v], metric="cosine")[0] == 1.0


def test_distance_errors_are_clear():
    with pytest.raises(ValueError, match="unknown metric"):
        m.pairwise_distances([X], metric="hamming")
    with pytest.raises(ValueError, match="unknown metric"):
        m.paired_distances([X], [Y], metric="chebyshev")
    with pytest.raises(ValueError, match="same number of columns"):
        m.pairwise_distances([X], [[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="same shape"):
        m.paired_distances([X, Y], [Z])
    with pytest.raises(ValueError, match="NaN"):
        m.paired_distances([[np.nan, 0.0]], [X])


@PROPERTY
@given(a=matrices(), metric=st.sampled_from(m.METRICS))
def test_pairwise_self_properties(a, metric):
    d = m.pairwise_distances(a, metric=metric)
    assert np.array_equal(d, d.T)
    assert np.all(d >= 0)
    assert np.all(np.diag(d) == 0)
    if metric == "cosine":
        assert np.all(d <= 2)


@PROPERTY
@given(data=st.data(), metric=st.sampled_from(m.METRICS))
def test_paired_matches_pairwise_diagonal(data, metric):
    a = data.draw(matrices())
    b = data.draw(arrays(np.float64, a.shape, elements=finite))
    paired = m.paired_distances(a, b, metric=metric)
    full = m.pairwise_distances(a, b, metric=metric)
    assert np.all(paired >= 0)
    if metric == "cosine":
        assert np.all(full <= 2) and np.all(paired <= 2)
    # sklearn's euclidean uses the |a|^2 - 2ab + |b|^2 expansion: allow its rounding.
    atol = 1e-4 if metric in ("euclidean", "sqeuclidean") else 1e-9
    np.testing.assert_allclose(np.diag(full), paired, rtol=1e-7, atol=atol)


# ---------------------------------------------------------------------------------------------- ROC family


def test_equal_error_rate_exact_crossing():
    # At threshold 0.5 one genuine (0.6) is rejected and one impostor (0.5) accepted: FAR = FRR = 1/4.
    d = [0.1, 0.2, 0.3, 0.6, 0.5, 0.7, 0.8, 0.9]
    same = [True] * 4 + [False] * 4
    eer, threshold = m.equal_error_rate(d, same)
    assert eer == pytest.approx(0.25)
    assert threshold == pytest.approx(0.5)


def test_equal_error_rate_interpolates_between_roc_points():
    # Genuine [1, 2], impostor [1.5, 3, 4, 5]. At 1.5: FAR .25, FRR .5; at 2: FAR .25, FRR 0.
    # FAR - FRR goes -.25 -> +.25, so the crossing is half-way: EER .25 at threshold 1.75.
    eer, threshold = m.equal_error_rate([1, 2, 1.5, 3, 4, 5], [True, True, False, False, False, False])
    assert eer == pytest.approx(0.25)
    assert threshold == pytest.approx(1.75)


def test_roc_thresholds_are_finite_distances_that_reproduce_each_point():
    rng = np.random.default_rng(1)
    same = rng.random(60) < 0.5
    d = np.round(rng.random(60) + 0.3 * ~same, 2)  # rounding creates ties
    far, tar, thresholds = m.roc(d, same)
    assert np.all(np.isfinite(thresholds)) and np.all(np.diff(thresholds) > 0)
    assert (far[0], tar[0], far[-1], tar[-1]) == (0, 0, 1, 1)
    for f, t, thr in zip(far, tar, thresholds, strict=True):
        r = m.rates_at_threshold(d, same, thr)
        assert (r.far, r.tar) == pytest.approx((f, t))


def test_rates_at_threshold_hand_checked():
    # Accepted (<= 0.5): 0.2 genuine (tp), 0.3 and 0.5 impostor (fp). Rejected: 0.6 genuine, 0.8 impostor.
    r = m.rates_at_threshold([0.2, 0.6, 0.3, 0.8, 0.5], [True, True, False, False, False], 0.5)
    assert (r.tp, r.fn, r.fp, r.tn) == (1, 1, 2, 1)
    assert (r.far, r.frr, r.tar, r.accuracy) == pytest.approx((2 / 3, 1 / 2, 1 / 2, 2 / 5))
    assert r.threshold == 0.5
    assert json.dumps(r.as_dict())


def test_rates_with_one_class_give_nan_not_an_error():
    r = m.rates_at_threshold([0.1, 0.9], [True, True], 0.5)
    assert math.isnan(r.far) and r.tar == 0.5


def test_tar_at_far_hand_checked():
    d = [0.1, 0.2, 0.3, 0.6, 0.25, 0.7, 0.8, 0.9]
    same = [True] * 4 + [False] * 4
    assert m.tar_at_far(d, same, 0.0) == pytest.approx((0.5, 0.2))  # 0.25 is the closest impostor
    assert m.tar_at_far(d, same, 0.25) == pytest.approx((1.0, 0.6))
    assert m.tar_at_far(d, same, 0.3) == pytest.approx((1.0, 0.6))
    with pytest.raises(ValueError, match="far_target"):
        m.tar_at_far(d, same, 1.5)


def test_roc_auc_and_errors():
    assert m.roc_auc([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == 1.0
    assert m.roc_auc([0.1, 0.2, 0.8, 0.9], [False, False, True, True]) == 0.0
    with pytest.raises(ValueError, match="both genuine"):
        m.roc_auc([0.1, 0.2], [True, True])
    with pytest.raises(ValueError, match="same length"):
        m.roc_auc([0.1, 0.2], [True])
    with pytest.raises(ValueError, match="boolean"):
        m.roc_auc([0.1, 0.2], [2, 0])


@PROPERTY
@given(pairs=scored_pairs())
def test_auc_in_unit_interval(pairs):
    assert 0.0 <= m.roc_auc(*pairs) <= 1.0
    eer, _ = m.equal_error_rate(*pairs)
    assert 0.0 <= eer <= 1.0


# ---------------------------------------------------------------------------------------------- thresholds


def test_best_threshold_on_separable_case_is_perfect():
    d = [0.1, 0.3, 0.2, 0.7, 0.9, 0.8]
    same = [True, True, True, False, False, False]
    threshold = m.best_accuracy_threshold(d, same)
    assert threshold == pytest.approx(0.5)  # midpoint of the gap between 0.3 and 0.7
    assert m.rates_at_threshold(d, same, threshold).accuracy == 1.0


def test_best_threshold_between_adjacent_floats():
    eps = np.finfo(float).eps  # the midpoint of 1+eps and 1+2eps rounds to 1+2eps
    d, same = [1 + eps, 1 + 2 * eps], [True, False]
    assert m.rates_at_threshold(d, same, m.best_accuracy_threshold(d, same)).accuracy == 1.0


@PROPERTY
@given(pairs=scored_pairs())
def test_best_threshold_matches_brute_force(pairs):
    d, same = pairs
    best = m.rates_at_threshold(d, same, m.best_accuracy_threshold(d, same)).accuracy
    candidates = np.append(np.unique(d), d.min() - 1)
    brute = max(m.rates_at_threshold(d, same, t).accuracy for t in candidates)
    assert best == pytest.approx(brute)


def test_threshold_sweep_columns_and_default_grid():
    rng = np.random.default_rng(2)
    same = np.arange(300) % 2 == 0
    d = rng.normal(0.5, 0.1, 300) + 0.3 * ~same
    sweep = m.threshold_sweep(d, same)
    assert list(sweep.columns) == ["threshold", "far", "frr", "tar", "accuracy", "tp", "fp", "tn", "fn"]
    assert 200 <= len(sweep) <= 201
    assert np.isclose(sweep.threshold, m.equal_error_rate(d, same)[1]).any()
    assert (sweep.tp + sweep.fp + sweep.tn + sweep.fn == 300).all()
    custom = m.threshold_sweep(d, same, thresholds=[0.4, 0.6])
    assert custom.threshold.tolist() == [0.4, 0.6]
    assert custom.iloc[1].tp == m.rates_at_threshold(d, same, 0.6).tp


@PROPERTY
@given(pairs=scored_pairs())
def test_threshold_sweep_is_monotone(pairs):
    sweep = m.threshold_sweep(*pairs)
    assert sweep.threshold.is_monotonic_increasing
    assert sweep.far.is_monotonic_increasing  # pandas: non-decreasing
    assert sweep.frr.is_monotonic_decreasing  # non-increasing
    np.testing.assert_allclose(sweep.tar, 1 - sweep.frr)


# ---------------------------------------------------------------------------------------------- protocol


def _two_fold_case():
    # Fold 0 alone would pick ~0.5, fold 1 alone ~0.85; each should be scored with the *other* one.
    d = np.array([0.1, 0.2, 0.8, 0.9, 0.6, 0.7, 1.0, 1.1])
    same = np.array([True, True, False, False] * 2)
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    return d, same, folds


def test_kfold_threshold_comes_from_the_other_folds():
    d, same, folds = _two_fold_case()
    own = [m.best_accuracy_threshold(d[folds == k], same[folds == k]) for k in (0, 1)]
    assert own == pytest.approx([0.5, 0.85])  # each fold alone would score 100%

    result = m.kfold_verification(d, same, folds=folds)
    np.testing.assert_allclose(result.fold_thresholds, [0.85, 0.5])
    # Fold 0 at 0.85 accepts impostor 0.8 -> 3/4; fold 1 at 0.5 rejects both genuine pairs -> 2/4.
    np.testing.assert_allclose(result.fold_accuracies, [0.75, 0.5])
    assert result.accuracy == pytest.approx(0.625)
    assert result.accuracy_std == pytest.approx(0.125)
    assert result.threshold == pytest.approx(0.675)


def test_kfold_without_fold_ids_uses_contiguous_kfold():
    d, same, folds = _two_fold_case()
    by_ids = m.kfold_verification(d, same, folds=folds)
    by_kfold = m.kfold_verification(d, same, n_folds=2)
    np.testing.assert_allclose(by_kfold.fold_accuracies, by_ids.fold_accuracies)


def test_kfold_result_summary_is_json_ready():
    rng = np.random.default_rng(3)
    same = np.arange(600) % 60 < 30
    d = rng.normal(0.4, 0.1, 600) + 0.4 * ~same
    result = m.kfold_verification(d, same, folds=np.arange(600) // 60)
    assert result.fold_accuracies.shape == (10,)
    summary = result.as_dict()
    assert set(summary) == {"accuracy", "accuracy_std", "auc", "eer", "tar_at_far_1e-3", "threshold"}
    assert all(type(v) is float for v in summary.values())
    json.dumps(summary)
    assert summary["auc"] == pytest.approx(m.roc_auc(d, same))
    assert result.eer == pytest.approx(m.equal_error_rate(d, same)[0])
    assert 0.9 < result.accuracy <= 1.0 and result.standard_error >= 0
    with pytest.raises(ValueError, match="one id per pair"):
        m.kfold_verification(d, same, folds=[0, 1])


def test_bootstrap_ci_brackets_the_statistic_and_is_reproducible():
    rng = np.random.default_rng(4)
    same = np.arange(200) % 2 == 0
    d = rng.normal(0.5, 0.2, 200) + 0.2 * ~same
    low, high = m.bootstrap_ci(d, same, m.roc_auc, n_boot=100)
    assert low < m.roc_auc(d, same) < high
    assert (low, high) == m.bootstrap_ci(d, same, m.roc_auc, n_boot=100)
    assert (low, high) != m.bootstrap_ci(d, same, m.roc_auc, n_boot=100, seed=1)


def test_bootstrap_procedure_matches_every_resample_worked_out_by_hand():
    # Genuine 0.1, 0.45; impostor 0.4, 0.9. Each class is drawn as {first}, {second} or {both}: nine
    # resamples in all. Threshold chosen on the resample (best accuracy, ties to the smallest), then
    # scored on the pairs not drawn: (threshold, far, frr, tar, accuracy, pairs out of bag).
    nan = float("nan")
    by_hand = {
        (0.25, 0, 1, 0, 0.5, 2),  # {0.1} x {0.4}: 0.45 rejected, 0.9 rejected
        (0.5, 1, 0, 1, 0.5, 2),  # {0.1} x {0.9}: 0.45 accepted, 0.4 accepted
        (0.25, nan, 1, 0, 0, 1),  # {0.1} x both: 0.45 rejected
        (0.375, 0, 0, 1, 1, 2),  # {0.45} x {0.4}: accept nothing ties accept all; below 0.4 by half a gap
        (0.675, 1, 0, 1, 0.5, 2),  # {0.45} x {0.9}: 0.1 accepted, 0.4 accepted
        (0.675, nan, 0, 1, 1, 1),  # {0.45} x both: 0.1 accepted
        (0.25, 0, nan, nan, 1, 1),  # both x {0.4}: 0.9 rejected
        (0.675, 1, nan, nan, 0, 1),  # both x {0.9}: 0.4 accepted
        (0.25, nan, nan, nan, nan, 0),  # both x both: nothing left out
    }
    key = lambda row: tuple(None if math.isnan(v) else round(v, 9) for v in row)  # noqa: E731
    runs = m.bootstrap_procedure([0.1, 0.45, 0.4, 0.9], [True, True, False, False], n_boot=400, seed=3)
    assert list(runs.columns) == list(m.PROCEDURE_COLUMNS)
    assert {key(row) for row in runs.itertuples(index=False)} == {key(row) for row in by_hand}


def test_bootstrap_procedure_is_seeded_and_wider_than_the_fixed_threshold_interval():
    rng = np.random.default_rng(7)
    same = np.arange(200) % 2 == 0
    d = rng.normal(0.4, 0.1, 200) + 0.25 * ~same
    runs = m.bootstrap_procedure(d, same, n_boot=200, seed=0)
    pd.testing.assert_frame_equal(runs, m.bootstrap_procedure(d, same, n_boot=200, seed=0))
    assert not runs.equals(m.bootstrap_procedure(d, same, n_boot=200, seed=1))
    assert runs["n_out_of_bag"].between(40, 110).all()  # about 36.8% of 200
    # The threshold the fixed-threshold interval uses (chosen once on all pairs) and its accuracy.
    threshold = m.best_accuracy_threshold(d, same)
    point = m.rates_at_threshold(d, same, threshold).accuracy
    fixed = m.bootstrap_ci(d, same, lambda a, b: m.rates_at_threshold(a, b, threshold).accuracy, n_boot=200)
    low, high = np.quantile(runs["accuracy"], [0.025, 0.975])
    assert low <= point <= high
    assert high - low >= fixed[1] - fixed[0]
    assert runs["threshold"].std() > 0  # the choice moves with the sample
