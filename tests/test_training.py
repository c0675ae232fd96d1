"""Training on a tiny LFW subset: the loss falls, held-out accuracy beats chance; saved models load back.

All on real LFW crops (60 people x 10 photos, 32x32 grey) and a couple of short epochs, so the whole
file runs in well under a minute on two CPU cores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facecore.classroom.data import ClassroomData, load_lfw_crops, prepare_data
from facecore.classroom.evaluate import embed_crops, evaluate_embeddings, pixel_naive_bayes
from facecore.classroom.losses import BatchAllTripletLoss, SemiHardTripletLoss, mean_triplet_loss
from facecore.classroom.models import build_encoder, build_twin, export_for_chips, save_model
from facecore.classroom.training import (
    EpochReport,
    PKBatches,
    TrainingRun,
    train_triplet_model,
    train_twin_network,
)
from facecore.classroom.triplets import batch_all_loss, semi_hard_triplets

MARGIN = 0.2
EPOCHS = 2
STEPS = 60  # steps per epoch: 120 PK batches of 8 people x 4 photos in all


@pytest.fixture(scope="module")
def data(lfw_home: Path) -> ClassroomData:
    # 50 people with 8 photos each: all of the bundled mini LFW's, or 50 spread over the full LFW's.
    crops = load_lfw_crops(lfw_home, min_images=8, max_images=8, max_people=50, size=32)
    return prepare_data(crops, held_out=0.3, n_pairs=400, seed=0)


@pytest.fixture(scope="module")
def fixed_batches(data: ClassroomData) -> list[np.ndarray]:
    batches = PKBatches(data.train, seed=123)
    return [batches.indices(step) for step in range(8)]


@pytest.fixture(scope="module")
def trained(data: ClassroomData) -> TrainingRun:
    return train_triplet_model(
        data, mining="batch-all", margin=MARGIN, epochs=EPOCHS, steps_per_epoch=STEPS
    )


# ----------------------------------------------------------------------------- data


def test_people_are_split_and_pairs_balanced(data: ClassroomData) -> None:
    assert not set(data.train.labels) & set(data.test.labels)  # no held-out person seen in training
    assert data.train.images.shape[1:] == (32, 32, 1) and data.train.images.dtype == np.uint8
    assert len(data.same) == 400 and data.same.sum() == 200
    a, b = data.pairs.T
    assert (a != b).all()
    assert ((data.test.labels[a] == data.test.labels[b]) == data.same).all()
    assert len({tuple(sorted(p)) for p in data.pairs.tolist()}) == len(data.pairs)  # all distinct


def test_pk_batches_hold_p_people_with_k_photos(data: ClassroomData) -> None:
    x, y = PKBatches(data.train, people=8, per_person=4, seed=0)[0]
    assert x.shape == (32, 32, 32, 1) and x.dtype == np.float32
    people, counts = np.unique(y, return_counts=True)
    assert len(people) == 8 and (counts == 4).all()


# ----------------------------------------------------------------------------- losses


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_keras_losses_match_the_numpy_definitions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(24, 8)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    labels = rng.integers(0, 5, size=24)
    keras_all = BatchAllTripletLoss(MARGIN)(labels, embeddings)
    assert float(keras_all) == pytest.approx(batch_all_loss(embeddings, labels, MARGIN), rel=1e-4)
    keras_semi = SemiHardTripletLoss(MARGIN)(labels, embeddings)
    numpy_semi = semi_hard_triplets(embeddings, labels, MARGIN)["loss"].mean()
    assert float(keras_semi) == pytest.approx(numpy_semi, rel=1e-4)


# ----------------------------------------------------------------------------- training


def test_triplet_training_lowers_the_loss_and_beats_chance(
    data: ClassroomData, fixed_batches: list[np.ndarray], trained: TrainingRun
) -> None:
    untrained = build_encoder(data.input_shape, 64, seed=0)  # the same start as `trained`
    before = mean_triplet_loss(untrained, data.train, MARGIN, fixed_batches)
    after = mean_triplet_loss(trained.model, data.train, MARGIN, fixed_batches)
    assert after < 0.8 * before
    assert len(trained.losses) == EPOCHS and len(trained.held_out_auc) == EPOCHS
    result = trained.result
    assert result is not None and len(result.distances) == len(data.same)
    # 400 held-out pairs: chance is 50% with a standard error of 2.5 points.
    assert result.accuracy > 0.55
    assert result.auc > 0.6
    baseline = evaluate_embeddings("untrained", embed_crops(untrained, data.test.images), data)
    assert result.auc > baseline.auc


def test_semi_hard_mining_trains_with_live_reports(data: ClassroomData, fixed_batches) -> None:
    reports: list[EpochReport] = []
    run = train_triplet_model(
        data, mining="semi-hard", margin=MARGIN, epochs=EPOCHS, steps_per_epoch=STEPS, on_epoch=reports.append
    )
    assert [r.epoch for r in reports] == [1, 2]
    assert all(r.test_embeddings.shape == (len(data.test), 64) for r in reports)
    assert np.allclose(np.linalg.norm(reports[-1].test_embeddings, axis=1), 1.0, atol=1e-4)
    untrained = build_encoder(data.input_shape, 64, seed=0)
    before = mean_triplet_loss(untrained, data.train, MARGIN, fixed_batches)
    assert mean_triplet_loss(run.model, data.train, MARGIN, fixed_batches) < 0.8 * before
    assert run.result.accuracy > 0.55


def test_twin_network_learns_same_or_different(data: ClassroomData) -> None:
    run = train_twin_network(data, epochs=3, steps_per_epoch=STEPS)
    assert run.model.count_params() > 0 and len(run.losses) == 3
    assert run.losses[-1] < run.losses[0]  # binary cross-entropy falls
    assert run.result is not None and run.result.model == "twin network"
    assert run.result.auc > 0.55


def test_pixel_naive_bayes_baseline_scores_the_same_pairs(data: ClassroomData, trained: TrainingRun) -> None:
    result = pixel_naive_bayes(data)
    assert len(result.distances) == len(data.same)
    # Raw pixels of two crops say next to nothing about identity: near chance on the 400 held-out pairs
    # (chance 0.5, standard error 0.025), and far below the triplet model trained on the same crops.
    # Measured (AUC / accuracy): bundled pack 0.471 / 0.458 vs trained 0.797 / 0.708; full LFW
    # 0.437 / 0.443 vs trained 0.676 / 0.605.
    assert 0.35 < result.auc < 0.65 and 0.35 < result.accuracy < 0.65
    assert result.auc < trained.result.auc - 0.1
    assert result.accuracy < trained.result.accuracy - 0.05
    far, tar = result.roc()
    assert far[0] == 0.0 and tar[-1] == 1.0


# ----------------------------------------------------------------------------- keep and reuse


@pytest.fixture(scope="module")
def real_chips(faces_small: dict[str, list[Path]]) -> np.ndarray:
    """Aligned 150x150 chips of real photos, as the pipeline makes them."""
    from facecore.alignment import align_face
    from facecore.detection import get_detector
    from facecore.images import load_image

    detector = get_detector("hog")
    chips = []
    for paths in list(faces_small.values())[:4]:
        image = load_image(paths[0])
        faces = detector.detect(image)
        assert faces, f"no face found in {paths[0]}"
        chips.append(align_face(image, faces[0]).chip)
    return np.stack(chips)


def test_saved_model_loads_back_as_an_embedder_with_the_same_vectors(
    trained: TrainingRun, real_chips: np.ndarray, tmp_path: Path
) -> None:
    from facecore.embedding import get_embedder
    from facecore.embedding.keras_file import KerasFileEmbedder

    for_chips = export_for_chips(trained.model)
    path = save_model(for_chips, tmp_path / "classroom.keras")
    embedder = get_embedder("keras-file", path=str(path))
    assert isinstance(embedder, KerasFileEmbedder) and embedder.dimension == 64
    vectors = embedder.embed(real_chips)
    expected = np.asarray(for_chips.predict_on_batch(real_chips.astype(np.float32)))
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    assert embedder.version.startswith("keras-file-")
    # Flip TTA works like for any embedder: the mean of the chip's and its mirror's vectors.
    flipped = KerasFileEmbedder(path=str(path), flip_tta=True).embed(real_chips)
    mirror = np.asarray(for_chips.predict_on_batch(real_chips[:, :, ::-1].astype(np.float32)))
    np.testing.assert_allclose(flipped, (expected + mirror) / 2, atol=1e-5)


def test_a_crop_model_is_fed_resized_grey_chips(
    trained: TrainingRun, real_chips: np.ndarray, tmp_path: Path
) -> None:
    from facecore.embedding.keras_file import KerasFileEmbedder

    path = save_model(trained.model, tmp_path / "crops.keras")  # takes 32x32 grey, not chips
    embedder = KerasFileEmbedder(path=str(path))
    assert embedder.prepare(real_chips).shape == (len(real_chips), 32, 32, 1)
    expected = np.asarray(trained.model.predict_on_batch(embedder.prepare(real_chips)))
    np.testing.assert_allclose(embedder.embed(real_chips), expected, atol=1e-5)


def test_the_pipeline_runs_on_a_loaded_model(trained: TrainingRun, faces_small, tmp_path: Path) -> None:
    from facecore.config import PipelineConfig
    from facecore.embedding.keras_file import KerasFileEmbedder
    from facecore.images import load_image
    from facecore.pipeline import FacePipeline

    path = save_model(export_for_chips(trained.model), tmp_path / "pipeline.keras")
    pipeline = FacePipeline(PipelineConfig(detector="hog"), embedder=KerasFileEmbedder(path=str(path)))
    found = pipeline.process(load_image(next(iter(faces_small.values()))[0]))
    assert len(found) == 1 and found[0].embedding.shape == (64,)


def test_unusable_files_are_refused_with_a_reason(data: ClassroomData, tmp_path: Path) -> None:
    from facecore.embedding.keras_file import KerasModelError, load_embedding_model

    with pytest.raises(KerasModelError, match=".keras"):
        load_embedding_model(tmp_path / "model.h5")
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip file at all")
    with pytest.raises(KerasModelError, match="could not be loaded"):
        load_embedding_model(broken)
    twin = build_twin(build_encoder(data.input_shape, 8))
    with pytest.raises(KerasModelError, match="one image input"):
        load_embedding_model(save_model(twin, tmp_path / "twin.keras"))
    with pytest.raises(ValueError, match=".keras"):
        save_model(twin, tmp_path / "twin.h5")
