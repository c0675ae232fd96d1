"""Triplet loss, easy/semi-hard/hard classification and mining picks, on hand-checked cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facecore.classroom.triplets import (
    batch_all_loss,
    batch_hard_triplets,
    batch_triplets,
    classify_triplet,
    classify_triplets,
    semi_hard_triplets,
    triangle_coordinates,
    triplet_counts,
    triplet_loss,
    valid_triplets,
)


@pytest.mark.parametrize(
    ("d_ap", "d_an", "margin", "kind", "loss"),
    [
        (0.5, 1.0, 0.2, "easy", 0.0),  # negative well outside the band
        (0.5, 0.75, 0.25, "easy", 0.0),  # exactly on the band's outer edge (exact in binary): easy
        (0.5, 0.6, 0.2, "semi-hard", 0.1),  # inside the band
        (0.5, 0.5000001, 0.2, "semi-hard", 0.1999999),
        (0.5, 0.5, 0.2, "hard", 0.2),  # as close as the positive
        (0.5, 0.3, 0.2, "hard", 0.4),
        (0.9, 0.1, 0.0, "hard", 0.8),
        (0.3, 0.4, 0.0, "easy", 0.0),  # no margin: no band, so nothing is semi-hard
    ],
)
def test_hand_checked_triplets(d_ap: float, d_an: float, margin: float, kind: str, loss: float) -> None:
    assert classify_triplet(d_ap, d_an, margin) == kind
    assert float(triplet_loss(d_ap, d_an, margin)) == pytest.approx(loss, abs=1e-12)


def test_classification_is_elementwise_and_rejects_bad_margins() -> None:
    kinds = classify_triplets([0.5, 0.5, 0.5], [1.0, 0.6, 0.4], 0.2)
    assert list(kinds) == ["easy", "semi-hard", "hard"]
    with pytest.raises(ValueError, match="margin"):
        classify_triplets([0.5], [0.6], -0.1)
    with pytest.raises(ValueError, match="margin"):
        triplet_loss(0.5, 0.6, float("nan"))


@given(st.floats(0, 4, allow_nan=False), st.floats(0, 4, allow_nan=False), st.floats(0, 2, allow_nan=False))
@settings(max_examples=200, deadline=None)
def test_kind_agrees_with_loss(d_ap: float, d_an: float, margin: float) -> None:
    kind = classify_triplet(d_ap, d_an, margin)
    loss = float(triplet_loss(d_ap, d_an, margin))
    assert (kind == "easy") == (loss == 0.0 and not d_an <= d_ap)
    if kind == "hard":
        assert loss >= margin
    if kind == "semi-hard":
        assert 0 < loss <= margin  # < in exact arithmetic; rounding can reach it


# A hand-made batch on a line (1-D embeddings), so every distance is a difference of positions:
#   person A at 0.0 and 0.3, person B at 0.5 and 1.5, person C at 3.0 and 3.1.
POSITIONS = np.array([[0.0], [0.3], [0.5], [1.5], [3.0], [3.1]])
LABELS = ["A", "A", "B", "B", "C", "C"]
MARGIN = 0.4


def test_valid_triplets_count() -> None:
    # 6 anchors, each with 1 positive and 4 negatives.
    triples = valid_triplets(LABELS)
    assert triples.shape == (24, 3)
    labels = np.array(LABELS)
    assert (labels[triples[:, 0]] == labels[triples[:, 1]]).all()
    assert (triples[:, 0] != triples[:, 1]).all()
    assert (labels[triples[:, 0]] != labels[triples[:, 2]]).all()


def test_batch_counts_match_hand_count() -> None:
    table = batch_triplets(POSITIONS, LABELS, MARGIN)
    # anchor 0 (d_ap 0.3): negatives at 0.5 (semi-hard: 0.3 < 0.5 < 0.7), 1.5, 3.0, 3.1 (easy)
    row = table[(table.anchor == 0) & (table.negative == 2)].iloc[0]
    assert row.kind == "semi-hard" and row.loss == pytest.approx(0.2)
    # anchor 1 (at 0.3, d_ap 0.3): negative 2 at distance 0.2 -> hard, loss 0.5
    row = table[(table.anchor == 1) & (table.negative == 2)].iloc[0]
    assert row.kind == "hard" and row.loss == pytest.approx(0.5)
    # anchor 2 (at 0.5, d_ap 1.0): negatives 0 (0.5) and 1 (0.2) hard; 3.0 and 3.1 easy
    # anchor 3 (at 1.5, d_ap 1.0): negatives 0 (1.5 easy? 1.5 >= 1.4 -> easy), 1 (1.2 semi-hard),
    #   4 (1.5 easy), 5 (1.6 easy)
    # anchors 4, 5 (d_ap 0.1): every negative is >= 1.5 away -> easy
    counts = triplet_counts(POSITIONS, LABELS, MARGIN)
    assert counts.to_dict() == {"easy": 19, "semi-hard": 2, "hard": 3}
    expected = (0.2 + 0.5 + (1.0 - 0.5 + 0.4) + (1.0 - 0.2 + 0.4) + (1.0 - 1.2 + 0.4)) / 5
    assert batch_all_loss(POSITIONS, LABELS, MARGIN) == pytest.approx(expected)


def test_batch_hard_picks_farthest_positive_and_closest_negative() -> None:
    picks = batch_hard_triplets(POSITIONS, LABELS, MARGIN).set_index("anchor")
    assert picks.loc[0, "negative"] == 2  # 0.5 away, the closest other person
    assert picks.loc[2, "negative"] == 1  # 0.2 away
    assert picks.loc[3, "negative"] == 1  # 1.2 away (ahead of 0 at 1.5 and 4 at 1.5)
    assert picks.loc[4, "negative"] == 3  # 1.5 away
    assert list(picks["positive"]) == [1, 0, 3, 2, 5, 4]
    assert list(picks["kind"]) == ["semi-hard", "hard", "hard", "semi-hard", "easy", "easy"]


def test_semi_hard_picks_closest_negative_beyond_the_positive() -> None:
    picks = semi_hard_triplets(POSITIONS, LABELS, MARGIN).set_index("anchor")
    # anchor 1: d_ap 0.3; negatives at 0.2 (not farther), 1.2, 2.7, 2.8 -> the one at 1.2 (index 3)
    assert picks.loc[1, "negative"] == 3 and picks.loc[1, "kind"] == "easy"
    # anchor 2: d_ap 1.0; negatives at 0.5, 0.2, 2.5, 2.6 -> index 4 (2.5)
    assert picks.loc[2, "negative"] == 4
    # anchor 3: d_ap 1.0; negatives at 1.5, 1.2, 1.5, 1.6 -> index 1 (1.2), semi-hard
    assert picks.loc[3, "negative"] == 1 and picks.loc[3, "kind"] == "semi-hard"
    assert not picks["fallback"].any()


def test_semi_hard_falls_back_to_the_farthest_negative() -> None:
    # The positive is farther than every negative: no semi-hard negative exists.
    embeddings = np.array([[0.0], [5.0], [1.0], [2.0]])
    picks = semi_hard_triplets(embeddings, ["A", "A", "B", "C"], 0.5).set_index("anchor")
    assert picks.loc[0, "negative"] == 3 and bool(picks.loc[0, "fallback"])
    assert picks.loc[0, "kind"] == "hard"


@given(
    st.floats(0.01, 3, allow_nan=False), st.floats(0.01, 3, allow_nan=False), st.floats(0, 6, allow_nan=False)
)
@settings(max_examples=200, deadline=None)
def test_triangle_keeps_the_three_distances(d_ap: float, d_an: float, d_pn: float) -> None:
    # Make the third side obey the triangle inequality.
    d_pn = min(max(d_pn, abs(d_ap - d_an)), d_ap + d_an)
    a, p, n = triangle_coordinates(d_ap, d_an, d_pn)
    assert np.linalg.norm(p - a) == pytest.approx(d_ap, abs=1e-9)
    assert np.linalg.norm(n - a) == pytest.approx(d_an, abs=1e-6)
    assert np.linalg.norm(n - p) == pytest.approx(d_pn, abs=1e-4)
