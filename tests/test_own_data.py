"""Evaluating a labelled set of one's own: folder and pairs CSV agree, bad CSVs fail whole, the CLI's JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from facecore.cache import EmbeddingCache
from facecore.evaluation.datasets import SAMPLES_DIR, lfw_images_dir
from facecore.evaluation.own_data import evaluate_pairs
from facecore.evaluation.own_pairs import (
    OwnDataError,
    extract_zip,
    folder_pairs,
    read_pairs_csv,
    write_pairs_csv,
)
from tests.archives import zip_bytes

REPO = Path(__file__).resolve().parents[1]
FACES_SMALL = SAMPLES_DIR / "faces_small"
LFW_KEYS = {"accuracy", "accuracy_std", "auc", "eer", "tar_at_far_1e-3", "threshold", "pairs", "images", "no_face", "seconds"}


@pytest.fixture(scope="module")
def cache() -> EmbeddingCache:
    return EmbeddingCache(os.environ.get("FACECORE_CACHE_DIR"))


@pytest.fixture(scope="module")
def lfw_folder(lfw_home, tmp_path_factory) -> Path:
    """Eight LFW people with three photos each, as a folder per person (links to the read-only files)."""
    root = tmp_path_factory.mktemp("own") / "lfw_subset"
    people = [p for p in sorted(lfw_images_dir(lfw_home).iterdir()) if len(list(p.glob("*.jpg"))) >= 3][:8]
    for person in people:
        (root / person.name).mkdir(parents=True)
        for photo in sorted(person.glob("*.jpg"))[:3]:
            (root / person.name / photo.name).symlink_to(photo)
    return root


def test_folder_and_pairs_csv_of_the_same_pairs_give_the_same_numbers(lfw_folder, cache, tmp_path) -> None:
    from_folder = folder_pairs(lfw_folder, max_impostors=120, seed=3)
    assert from_folder.genuine == 8 * 3 and from_folder.impostor == 120
    assert folder_pairs(lfw_folder, max_impostors=120, seed=3) == from_folder  # seeded
    write_pairs_csv(from_folder, tmp_path / "pairs.csv")
    from_csv = read_pairs_csv(tmp_path / "pairs.csv", lfw_folder)
    assert from_csv.pairs == from_folder.pairs

    a = evaluate_pairs(from_folder, cache=cache)
    b = evaluate_pairs(from_csv, cache=cache)
    np.testing.assert_array_equal(a.distances, b.distances)
    np.testing.assert_array_equal(a.folds, b.folds)
    np.testing.assert_array_equal(a.result.fold_thresholds, b.result.fold_thresholds)
    sa, sb = a.summary(), b.summary()
    assert set(sa) >= LFW_KEYS
    for key in LFW_KEYS - {"seconds"}:
        assert sa[key] == sb[key], key
    assert 0.5 < sa["accuracy"] <= 1.0 and sa["images"] == 24
    # every fold's threshold is chosen without its own pairs: 10 folds, each with genuine and impostor pairs
    assert len(set(a.folds.tolist())) == 10
    table = a.per_pair()
    assert len(table) == 144 and table["accepted"].tolist() == (a.distances <= a.result.threshold).astype(int).tolist()


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pairs.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("image_a,image_b\nobama/1.jpg,obama/2.jpg\n", "lacks the column(s) same"),
        ("image_a,image_b,same\nobama/1.jpg,obama/9.jpg,1\nobama/1.jpg,biden/1.jpg,0\n", "obama/9.jpg"),
        ("image_a,image_b,same\nobama/1.jpg,obama/2.jpg,1\nobama/1.jpg,biden/1.jpg,maybe\n", "Row(s) 2"),
        ("image_a,image_b,same\nobama/1.jpg,obama/2.jpg,1\n../faces_group/multiface.jpg,biden/1.jpg,0\n", "outside"),
        ("image_a,image_b,same\nobama/1.jpg,obama/2.jpg,1\nobama/1.jpg,obama/3.jpg,1\n", "both genuine"),
        ("image_a,image_b,same\n", "no pairs"),
        ("", "cannot be read"),
    ],
)
def test_a_bad_pairs_csv_fails_whole_with_a_sentence(tmp_path, text, words) -> None:
    with pytest.raises(OwnDataError) as caught:
        read_pairs_csv(_csv(tmp_path, text), FACES_SMALL)
    assert words in str(caught.value)


def test_labels_in_words_and_any_case_are_read(tmp_path) -> None:
    text = "Image_A, image_b ,SAME\nobama/1.jpg,obama/2.jpg,True\nobama/1.jpg,biden/1.jpg,different\n"
    pairs = read_pairs_csv(_csv(tmp_path, text), FACES_SMALL).pairs
    assert [p.same for p in pairs] == [True, False]


def test_a_zip_per_person_unpacks_to_the_same_pairs_and_refuses_escaping_names(tmp_path) -> None:
    entries = {f"people/{p.parent.name}/{p.name}": p.read_bytes() for p in sorted(FACES_SMALL.glob("*/*.jpg"))}
    root = extract_zip(zip_bytes(entries), tmp_path / "unzipped")
    assert [(p.image_a, p.image_b, p.same) for p in folder_pairs(root).pairs] == [
        (p.image_a, p.image_b, p.same) for p in folder_pairs(FACES_SMALL).pairs
    ]
    with pytest.raises(OwnDataError, match="outside"):
        extract_zip(zip_bytes({"../evil.jpg": b"x"}), tmp_path / "evil")
    with pytest.raises(OwnDataError, match="zip"):
        extract_zip(b"not a zip", tmp_path / "bad")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facecore", *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_cli_evaluate_ends_with_the_evaluate_lfw_keys_and_writes_per_pair_rows(tmp_path) -> None:
    result = run_cli("evaluate", "--folder", str(FACES_SMALL), "--per-pair", str(tmp_path / "pp.csv"), "--bootstrap", "20")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert set(summary) >= LFW_KEYS and summary["pairs"] == 136 and summary["genuine_pairs"] == 12
    table = pd.read_csv(tmp_path / "pp.csv")
    assert len(table) == 136 and set(table.columns) >= {"image_a", "image_b", "same", "distance", "accepted"}

    bad = _csv(tmp_path, "image_a,image_b,label\nobama/1.jpg,obama/2.jpg,1\n")
    failed = run_cli("evaluate", "--pairs", str(bad), "--images", str(FACES_SMALL))
    assert failed.returncode == 2 and "lacks the column(s) same" in failed.stderr
    assert "{" not in failed.stdout  # no summary that could be taken as a result


def test_cli_saves_lists_and_sets_operating_points_in_the_gallery(tmp_path) -> None:
    gallery = str(tmp_path / "gallery")
    saved = run_cli("evaluate", "--folder", str(FACES_SMALL), "--bootstrap", "0", "--save-as", "studio", "--target", "EER",
                    "--activate", "--gallery", gallery)
    assert saved.returncode == 0, saved.stderr
    summary = json.loads(saved.stdout.splitlines()[-1])
    assert "saved operating point 'studio'" in saved.stdout and "(active)" in saved.stdout

    listed = run_cli("operating-points", "list", "--gallery", gallery)
    points = json.loads(listed.stdout.splitlines()[-1])
    assert [(p["name"], p["active"], p["target"], p["set_name"], p["set_size"]) for p in points] == [
        ("studio", True, "EER", "faces_small", summary["pairs"])
    ]
    missing = run_cli("operating-points", "activate", "nope", "--gallery", gallery)
    assert missing.returncode == 2 and "no operating point 'nope'" in missing.stderr
    off = run_cli("operating-points", "deactivate", "--gallery", gallery)
    assert off.returncode == 0 and json.loads(off.stdout.splitlines()[-1])[0]["active"] is False
    on = run_cli("operating-points", "activate", "studio", "--gallery", gallery)
    assert on.returncode == 0 and json.loads(on.stdout.splitlines()[-1])[0]["active"] is True

    # Each change is in the gallery's audit log as the command line's; the refused activation is not.
    from facecore.gallery import Gallery, audit

    with Gallery(gallery) as stored:
        logged = audit.entries(stored.database, key_name="(cli)")
    assert [e.route for e in logged] == [
        "cli: operating-points activate", "cli: operating-points deactivate", "cli: evaluate --save-as"
    ]
    assert logged[-1].result["operating_point"] == "studio" and logged[-1].threshold is None


def test_impostor_sampling_lists_no_more_pairs_than_it_keeps() -> None:
    """5,000 images of 1,000 people have 12.5 million impostor pairs; the sample of 20,000 is drawn by
    number, never listing them all, and is the pairs the whole list would have given."""
    import itertools

    from facecore.evaluation.own_pairs import MAX_IMPOSTORS, OwnPair, _impostor_pairs

    root = Path("/photos")
    people = {f"person{k:04d}": [root / f"person{k:04d}" / f"{i}.jpg" for i in range(5)] for k in range(1000)}
    pairs = _impostor_pairs(root, people, MAX_IMPOSTORS, seed=0)
    assert len(pairs) == MAX_IMPOSTORS == len(set(pairs))
    assert all(p.image_a.split("/")[0] < p.image_b.split("/")[0] for p in pairs)  # different people, in order
    # On a set small enough to list, the same pairs as listing every impostor pair and sampling by index.
    small = {name: paths[: 1 + k % 4] for k, (name, paths) in enumerate(list(people.items())[:12])}
    labelled = [(p.relative_to(root).as_posix(), name) for name, paths in small.items() for p in paths]
    every = [OwnPair(a, b, False) for (a, pa), (b, pb) in itertools.combinations(labelled, 2) if pa != pb]
    keep = np.sort(np.random.default_rng(7).choice(len(every), size=50, replace=False))
    assert _impostor_pairs(root, small, 50, seed=7) == [every[i] for i in keep]
    assert _impostor_pairs(root, small, 10**6, seed=7) == every
