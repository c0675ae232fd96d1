"""Operating points: stored in the gallery database, the confidence they give, and the default from LFW."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from facecore.config import PipelineConfig
from facecore.gallery import Gallery, GalleryError
from facecore.gallery.operating_points import OperatingPoints
from facecore.verification.operating_points import (
    DEFAULT_NAME,
    choose_threshold,
    compact,
    confidence_at,
    deciding_threshold,
    from_pairs,
    lfw_default,
)
from facecore.verification.thresholds import default_threshold, lfw_distances

HOG = PipelineConfig(detector="hog")


@pytest.fixture(scope="module")
def lfw_pairs() -> tuple[np.ndarray, np.ndarray]:
    """LFW pairs.txt's 6,000 stored distances of the calibrated HOG + dlib configuration."""
    stored = lfw_distances(HOG, "euclidean")
    assert stored is not None, "facecore/data/lfw_distances.npz lacks the default configuration"
    return stored


def test_the_false_accept_estimate_is_the_impostor_fraction_at_or_below_the_distance(lfw_pairs) -> None:
    d, same = lfw_pairs
    point = lfw_default(HOG, "euclidean").point
    assert point is not None and point.source == "LFW" and point.set_size == 6000
    impostor, genuine = d[~same], d[same]
    # every stored impostor distance (ties included), the threshold, and distances outside the range
    for distance in [*impostor[::97], float(impostor.min()), point.threshold, 0.0, 5.0]:
        c = confidence_at(point, distance)
        assert c.far == np.mean(impostor <= distance)
        assert c.impostors_at_or_below == int(np.sum(impostor <= distance)) and c.impostors == impostor.size
        assert c.gar == np.mean(genuine <= distance)
    low = confidence_at(point, 0.0)
    assert low.far == 0 and "none of 3,000 stranger comparisons" in low.sentence()
    near = confidence_at(point, point.threshold)
    assert f"1 of {1 / near.far:,.0f} comparisons" in near.sentence()
    # Read at an aggregate of several distances, or at a search's nearest face, the rates are the same
    # numbers and the sentence says what they are.
    mean_of_3 = near.of_statistic("mean", 3)
    assert (mean_of_3.far, mean_of_3.gar) == (near.far, near.gar)
    assert "rates of one comparison, read at the mean of 3 distances" in mean_of_3.sentence()
    assert near.of_statistic("mean", 1) == near == near.of_statistic("distance", 5)
    assert "about N times this rate" in near.per_search().sentence()


def test_compact_keeps_all_distances_up_to_the_cap_and_quantiles_beyond() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=50_000)
    np.testing.assert_array_equal(compact(values[:100]), np.sort(values[:100]))
    kept = compact(values, max_size=1000)
    assert kept.size == 1000 and kept[0] == values.min() and kept[-1] == values.max()
    assert abs(np.mean(kept <= 0.5) - np.mean(values <= 0.5)) <= 1 / 1000


def test_the_default_decides_when_nothing_is_active(lfw_pairs) -> None:
    chosen = deciding_threshold(HOG, "euclidean", None)
    assert chosen.name == DEFAULT_NAME and chosen.threshold == default_threshold(HOG, "euclidean").value
    assert "LFW" in chosen.source


def test_points_are_chosen_stored_activated_and_kept_across_reopening(tmp_path: Path, lfw_pairs) -> None:
    d, same = lfw_pairs
    strict = from_pairs("strict", HOG, "euclidean", d, same, target="FAR <= 0.1%", source="LFW", set_name="LFW pairs.txt")
    assert strict.threshold == choose_threshold(d, same, "FAR <= 0.1%")
    assert np.mean(d[~same] <= strict.threshold) <= 0.001
    eer = from_pairs("eer", HOG, "euclidean", d, same, target="EER", source="LFW", set_name="LFW pairs.txt")
    with Gallery(tmp_path / "g") as gallery:
        points = OperatingPoints(gallery.database)
        points.save(strict)
        points.save(eer, activate=True)
        assert points.active(HOG, "euclidean").name == "eer"
        points.activate(HOG, "euclidean", "strict")
    with Gallery(tmp_path / "g") as gallery:  # a new process would see the same
        points = OperatingPoints(gallery.database)
        active = points.active(HOG, "euclidean")
        assert active.name == "strict" and active.threshold == strict.threshold and active.target == "FAR <= 0.1%"
        np.testing.assert_array_equal(active.impostor, np.sort(d[~same]))
        assert [p.active for p in points.list(HOG, "euclidean")].count(True) == 1
        assert points.active(PipelineConfig(detector="mtcnn"), "euclidean") is None  # per configuration
        with pytest.raises(GalleryError, match="no operating point 'nope'"):
            points.activate(HOG, "euclidean", "nope")
        assert points.active(HOG, "euclidean").name == "strict"  # a refused change changes nothing
        points.activate(HOG, "euclidean", None)
        assert points.active(HOG, "euclidean") is None


def test_a_bad_point_is_refused_with_a_sentence(lfw_pairs) -> None:
    d, same = lfw_pairs
    with pytest.raises(ValueError, match="Unknown target"):
        from_pairs("x", HOG, "euclidean", d, same, target="FAR <= 7%", source="LFW", set_name="s")
    with pytest.raises(ValueError, match="needs its threshold"):
        from_pairs("x", HOG, "euclidean", d, same, target="manual", source="own set", set_name="s")
    with pytest.raises(ValueError, match="name"):
        from_pairs(" ", HOG, "euclidean", d, same, target="EER", source="own set", set_name="s")


def _named(d: np.ndarray, same: np.ndarray, name: str, target: str = "EER"):
    return from_pairs(name, HOG, "euclidean", d, same, target=target, source="LFW", set_name="LFW pairs.txt")


def test_re_saving_the_active_point_keeps_it_active_and_one_point_at_most_is_active(
    gallery_at, tmp_path: Path, lfw_pairs
) -> None:
    d, same = lfw_pairs
    with gallery_at(tmp_path / "g") as gallery:
        points = OperatingPoints(gallery.database)
        points.save(_named(d, same, "strict", "FAR <= 0.1%"), activate=True)
        resaved = points.save(_named(d, same, "strict", "FAR <= 1%"))  # e.g. the dashboard's form, "Make active" off
        assert resaved.active and resaved.target == "FAR <= 1%"
        assert points.active(HOG, "euclidean").target == "FAR <= 1%"  # the new threshold decides, not the default
        points.save(_named(d, same, "eer"))
        assert points.active(HOG, "euclidean").name == "strict"  # saving another leaves the active one alone
        points.save(replace(points.get(HOG.model_version, HOG.detector, "euclidean", "eer"), active=True))
        assert [p.name for p in points.list(HOG, "euclidean") if p.active] == ["eer"]
        points.save(_named(d, same, "strict"), activate=True)
        assert [p.name for p in points.list(HOG, "euclidean") if p.active] == ["strict"]
        points.activate(HOG, "euclidean", None)
        assert not points.save(_named(d, same, "strict")).active  # an inactive point stays inactive
        assert points.active(HOG, "euclidean") is None


@pytest.mark.parametrize("name", [DEFAULT_NAME, "request", "FACECORE_API_THRESHOLD", " Default ", "REQUEST"])
def test_names_that_already_mean_a_threshold_are_refused(tmp_path: Path, lfw_pairs, name: str) -> None:
    d, same = lfw_pairs
    with Gallery(tmp_path / "g") as gallery:
        points = OperatingPoints(gallery.database)
        with pytest.raises(GalleryError, match="cannot name an operating point.*Pick another name"):
            points.save(_named(d, same, name), activate=True)
        assert points.list() == []


def test_the_command_line_activates_points_in_the_gallery_url(
    gallery_at, url_at, tmp_path: Path, lfw_pairs, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """``operating-points`` on either store, by ``--gallery URL`` or by ``$FACECORE_GALLERY_URL`` alone."""
    from facecore.cli import main as cli_main
    from facecore.gallery.audit import entries

    d, same = lfw_pairs
    url = url_at(tmp_path / "cli")
    with gallery_at(tmp_path / "cli") as gallery:
        points = OperatingPoints(gallery.database)
        points.save(_named(d, same, "strict", "FAR <= 0.1%"))
        points.save(_named(d, same, "eer"))

    assert cli_main(["operating-points", "activate", "strict", "--detector", "hog", "--gallery", url]) == 0
    assert "active: operating point 'strict'" in capsys.readouterr().out
    with gallery_at(tmp_path / "cli") as gallery:
        assert OperatingPoints(gallery.database).active(HOG, "euclidean").name == "strict"
        assert entries(gallery.database)[0].route == "cli: operating-points activate"

    monkeypatch.setenv("FACECORE_GALLERY_URL", url)
    monkeypatch.setenv("FACECORE_GALLERY_DIR", str(tmp_path / "not-the-gallery"))
    assert cli_main(["operating-points", "activate", "nope", "--detector", "hog"]) == 2
    assert "no operating point 'nope'" in capsys.readouterr().err
    assert cli_main(["operating-points", "deactivate", "--detector", "hog"]) == 0
    capsys.readouterr()
    with gallery_at(tmp_path / "cli") as gallery:
        assert OperatingPoints(gallery.database).active(HOG, "euclidean") is None
    assert not (tmp_path / "not-the-gallery").exists()


def test_evaluate_refuses_a_reserved_name_before_scoring_anything(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    from facecore.cli import main as cli_main

    missing = tmp_path / "no-such-folder"
    assert cli_main(["evaluate", "--folder", str(missing), "--save-as", "request", "--gallery", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "'request' cannot name an operating point" in err and str(missing) not in err


def test_a_target_the_set_is_too_small_to_measure_carries_a_caveat(lfw_pairs) -> None:
    """LFW's 3,000 impostor pairs can show a FAR of 0.1% (3 pairs) but not 0.01% (0.3 of a pair)."""
    d, same = lfw_pairs
    assert (~same).sum() == 3000
    measurable = from_pairs("p", HOG, "euclidean", d, same, target="FAR <= 0.1%", source="LFW", set_name="LFW")
    assert measurable.caveat is None
    too_fine = from_pairs("q", HOG, "euclidean", d, same, target="FAR <= 0.01%", source="LFW", set_name="LFW")
    assert too_fine.threshold < d[~same].min()  # below every impostor distance: FAR 0 on this set
    assert "needs at least 10,000 impostor pairs" in too_fine.caveat and "has 3,000" in too_fine.caveat
    for target in ("EER", "max accuracy"):
        assert from_pairs("r", HOG, "euclidean", d, same, target=target, source="LFW", set_name="LFW").caveat is None
