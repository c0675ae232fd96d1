"""facecore.evaluation.datasets against the LFW in use (the bundled mini LFW on a fresh clone; the protocol
files of the full LFW where ``FACECORE_LFW_HOME`` points at it), read-only, and small folders in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecore.evaluation import datasets as ds


def _tree(root: Path) -> set[Path]:
    """Everything in ``lfw_home/`` except the (huge, untouched) image folder's contents."""
    return {p.relative_to(root) for p in root.iterdir()}


# ---------------------------------------------------------------------------------------------- LFW pairs


def test_ten_folds_follow_the_protocol_and_all_7701_images_exist(full_lfw_home):
    pairs = ds.read_lfw_pairs(full_lfw_home, "10_folds")
    assert len(pairs) == 6000
    assert sum(p.same for p in pairs) == 3000
    folds = ds.pair_folds(pairs)
    assert np.array_equal(np.bincount(folds), [600] * 10)
    # Each fold: 300 genuine pairs, then 300 impostor pairs.
    same = ds.pair_labels(pairs).reshape(10, 600)
    assert same[:, :300].all() and not same[:, 300:].any()
    first = pairs[0]
    assert (first.path_a.parent.name, first.path_a.name, first.path_b.name) == (
        "Abel_Pacheco", "Abel_Pacheco_0001.jpg", "Abel_Pacheco_0004.jpg")
    assert first.same and first.fold == 0
    images = ds.unique_images(pairs)
    assert len(images) == 7701
    assert images[:2] == [pairs[0].path_a, pairs[0].path_b]  # first-seen order
    assert ds.missing_images(pairs) == []


def test_dev_subsets(full_lfw_home):
    for subset, n in (("dev_train", 2200), ("dev_test", 1000)):
        pairs = ds.read_lfw_pairs(full_lfw_home, subset)
        assert len(pairs) == n
        assert ds.pair_labels(pairs).sum() == n // 2
        assert set(ds.pair_folds(pairs)) == {0}
        assert ds.missing_images(pairs) == []


def test_the_benchmark_pairs_follow_the_protocol(lfw_source):
    """pairs.txt on full LFW, the pack's 10 x (15 + 15) demo pairs from View 1 otherwise."""
    pairs = ds.read_lfw_pairs(lfw_source.home, lfw_source.benchmark_subset)
    per_half = {"10_folds": 300, "demo": 15}[lfw_source.benchmark_subset]
    assert len(pairs) == 10 * 2 * per_half
    same = ds.pair_labels(pairs).reshape(10, 2 * per_half)
    assert same[:, :per_half].all() and not same[:, per_half:].any()
    assert np.array_equal(np.bincount(ds.pair_folds(pairs)), [2 * per_half] * 10)
    assert ds.missing_images(pairs) == []


def test_lfw_people_with_many_images(lfw_source):
    if lfw_source.full:
        people = ds.lfw_people(lfw_source.home, min_images=70)
        assert len(people) == 7
        assert sum(len(v) for v in people.values()) == 1288
        assert "George_W_Bush" in people
    else:  # samples/README.md: 50 people with exactly 8 photos, 65 with 4 or more
        people = ds.lfw_people(lfw_source.home, min_images=8)
        assert len(people) == 50 and {len(v) for v in people.values()} == {8}
        assert len(ds.lfw_people(lfw_source.home, min_images=4)) == 65
    assert list(people) == sorted(people)


def test_missing_lfw_explains_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="lfw_funneled.*download-lfw"):
        ds.lfw_images_dir(tmp_path)
    with pytest.raises(ValueError, match="unknown LFW subset"):
        ds.read_lfw_pairs(tmp_path, "train")


def _fake_lfw(tmp_path: Path, pairs_text: str) -> Path:
    (tmp_path / "lfw_home" / "lfw_funneled").mkdir(parents=True)
    (tmp_path / "lfw_home" / "pairsDevTest.txt").write_text(pairs_text)
    return tmp_path


def test_parse_small_dev_file_and_report_missing(tmp_path):
    home = _fake_lfw(tmp_path, "1\nAnn\t1\t2\nAnn\t1\tBob\t3\n")
    genuine, impostor = ds.read_lfw_pairs(home, "dev_test")
    images = home / "lfw_home" / "lfw_funneled"
    assert genuine == ds.Pair(images / "Ann" / "Ann_0001.jpg", images / "Ann" / "Ann_0002.jpg", True, 0)
    assert impostor == ds.Pair(images / "Ann" / "Ann_0001.jpg", images / "Bob" / "Bob_0003.jpg", False, 0)
    assert ds.unique_images([genuine, impostor]) == [genuine.path_a, genuine.path_b, impostor.path_b]
    assert len(ds.missing_images([genuine, impostor])) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [("2\nAnn\t1\t2\nAnn\t1\tBob\t3\n", "promises 4 pairs"), ("1\nAnn\t1\tBob\t3\nAnn\t1\t2\n", "line 2")],
)
def test_malformed_pairs_file(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        ds.read_lfw_pairs(_fake_lfw(tmp_path, text), "dev_test")


# ---------------------------------------------------------------------------------------------- folders


def test_image_folder_on_faces_small(sample_data):
    people = ds.image_folder(sample_data / "faces_small")
    assert len(people) == 9
    assert sum(len(v) for v in people.values()) == 17
    assert len(people["obama"]) == 4


def test_image_folder_filters_suffixes_hidden_files_and_small_people(tmp_path):
    for rel in ["ann/1.JPG", "ann/2.png", "ann/3.webp", "ann/4.txt", "ann/.5.jpg", "bob/1.jpeg", "bob/2.BMP",
                "cid/1.jpg", ".hidden/1.jpg"]:
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).touch()
    (tmp_path / "notes.jpg").touch()  # not in a person folder
    (tmp_path / "empty").mkdir()
    people = ds.image_folder(tmp_path)
    assert list(people) == ["ann", "bob", "cid"]
    assert [p.name for p in people["ann"]] == ["1.JPG", "2.png", "3.webp"]
    assert list(ds.image_folder(tmp_path, min_images=2)) == ["ann", "bob"]
    with pytest.raises(FileNotFoundError):
        ds.image_folder(tmp_path / "nowhere")


def test_default_lfw_home(monkeypatch, tmp_path):
    monkeypatch.setenv(ds.LFW_HOME_ENV, str(ds.BUNDLED_LFW_HOME))
    assert ds.default_lfw_home() == ds.BUNDLED_LFW_HOME
    monkeypatch.delenv(ds.LFW_HOME_ENV)
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "nothing"))
    assert ds.default_lfw_home() == ds.BUNDLED_LFW_HOME  # never None: the pack is always there


# ---------------------------------------------------------------------------------------------- sklearn


def test_sklearn_pixel_pairs_use_a_scratch_cache(full_lfw_home, tmp_path):
    lfw_home = full_lfw_home
    data_lfw_home = lfw_home / "lfw_home"
    before = _tree(data_lfw_home)
    pixels, same = ds.sklearn_pixel_pairs(lfw_home, "dev_test", tmp_path)
    assert pixels.shape == (1000, 2, 62, 47)
    assert pixels.dtype == np.float32 and pixels.min() >= 0.0 and pixels.max() <= 1.0
    assert np.array_equal(same, ds.pair_labels(ds.read_lfw_pairs(lfw_home, "dev_test")))

    assert _tree(data_lfw_home) == before
    assert not (data_lfw_home / "joblib").exists()
    assert (tmp_path / "lfw_home" / "joblib").is_dir()

    # sklearn picks the k-th file of the sorted folder; check it is the file we name for the first pair.
    first = ds.read_lfw_pairs(lfw_home, "dev_test")[0]
    with Image.open(first.path_a) as img:
        crop = img.crop((78, 70, 172, 195)).resize((47, 62))
        expected = (np.asarray(crop, dtype=np.float32) / 255.0).mean(axis=2)
    np.testing.assert_allclose(pixels[0, 0], expected, atol=1e-6)
