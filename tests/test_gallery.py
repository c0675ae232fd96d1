"""The gallery on real faces: people, enrolment, 1:K identification, persistence, concurrency, export."""

from __future__ import annotations

import dataclasses
import io
import multiprocessing
import threading
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facecore.config import PipelineConfig
from facecore.gallery import Gallery, GalleryError, Match, gallery_url, importing, open_gallery
from facecore.gallery.importing import ImportJob, ImportReport, enrol_many, folder_jobs, photo_jobs, zip_jobs
from facecore.images import decode_image, read_bytes
from facecore.pipeline import FacePipeline
from facecore.types import EmbeddedFace, Face
from facecore.verification.decisions import identify_decision
from tests.archives import zip_bytes
from tests.stores import stored_images

THRESHOLD = 0.6  # dlib's published euclidean operating point


# ----------------------------------------------------------------------------- helpers


def tiny_jpeg(worker: int, i: int) -> bytes:
    """A real 16x16 JPEG whose content (hence hash) is unique to ``(worker, i)``."""
    pixels = np.zeros((16, 16, 3), np.uint8)
    pixels[:8] = (40 + 4 * i, 60 + 45 * worker, 200 - 3 * i)  # worker < 4, i < 50
    pixels[8:, : 1 + i % 16] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def plain_jpeg() -> bytes:
    """A photo of nothing: a grey gradient with no face in it."""
    pixels = np.tile(np.linspace(60, 200, 640, dtype=np.uint8)[None, :, None], (480, 1, 3))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    return buffer.getvalue()


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def _add_faces_worker(url: str, worker: int, person_id: int, vectors, chip, model, barrier, results) -> None:
    """One process of the concurrency test: add faces (and search now and then) as fast as it can."""
    try:
        gallery = open_gallery(url)
        barrier.wait(timeout=120)  # start writing together, after the slow imports
        for i, vector in enumerate(vectors):
            face = EmbeddedFace(Face((worker, i, 100, 100), 1.0, None, "hog"), vector, chip)
            gallery.add_face(person_id, tiny_jpeg(worker, i), face, model)
            if i % 10 == 9:
                gallery.search(vector, model_version=model)  # readers interleave with the other writer
        results.put((worker, "ok"))
    except BaseException as exc:  # report everything: the parent asserts on it
        results.put((worker, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    return FacePipeline(PipelineConfig(detector="hog"))


@pytest.fixture(scope="module")
def model(pipeline: FacePipeline) -> str:
    return pipeline.embedder.version


@pytest.fixture(scope="module")
def embedded(pipeline: FacePipeline, faces_small: dict[str, list[Path]]):
    """``embedded(person, n) -> (image bytes, EmbeddedFace)`` for faces_small/<person>/<n>.jpg, memoised."""
    memo: dict[tuple[str, int], tuple[bytes, EmbeddedFace]] = {}

    def get(person: str, n: int) -> tuple[bytes, EmbeddedFace]:
        if (person, n) not in memo:
            data = read_bytes(faces_small[person][n - 1])
            found = pipeline.process(decode_image(data))
            assert found, f"no face in {person}/{n}"
            memo[person, n] = (data, found[0])
        return memo[person, n]

    return get


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory, pipeline: FacePipeline, faces_small, model: str, gallery_at) -> Path:
    """Where a gallery (of each store in turn) has Barack Obama (photos 1-3) and Joe Biden (photo 1),
    enrolled the real way."""
    root = tmp_path_factory.mktemp("enrolled")
    with gallery_at(root) as gallery:
        obama = gallery.create_person("Barack Obama")
        biden = gallery.create_person("Joe Biden")
        for n in (1, 2, 3):
            gallery.enrol(obama.id, read_bytes(faces_small["obama"][n - 1]), pipeline)
        gallery.enrol(biden.id, read_bytes(faces_small["biden"][0]), pipeline)
        assert gallery.index_size(model) == 4  # builds and saves the index
    return root


# ----------------------------------------------------------------------------- people


def test_people_can_be_created_renamed_and_deleted(tmp_path: Path, gallery_at) -> None:
    gallery = gallery_at(tmp_path)
    ada = gallery.create_person("  Ada Lovelace \t")
    assert ada.name == "Ada Lovelace" and ada.face_count == 0
    grace = gallery.create_person("Grace Hopper")
    assert [p.name for p in gallery.people()] == ["Ada Lovelace", "Grace Hopper"]

    renamed = gallery.rename_person(ada.id, "Augusta Ada King")
    assert renamed.id == ada.id and renamed.name == "Augusta Ada King"
    assert gallery.find_person("augusta ADA king ") == renamed
    assert gallery.find_person("Ada Lovelace") is None

    gallery.delete_person(grace.id)
    assert [p.id for p in gallery.people()] == [ada.id]
    with pytest.raises(GalleryError, match="no person with id"):
        gallery.person(grace.id)
    with pytest.raises(GalleryError, match="no person with id"):
        gallery.rename_person(grace.id, "Someone")
    with pytest.raises(GalleryError, match="no person with id"):
        gallery.delete_person(grace.id)


def test_the_default_root_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACECORE_GALLERY_DIR", str(tmp_path / "from-env"))
    assert Gallery().root == (tmp_path / "from-env").resolve()
    assert (tmp_path / "from-env" / "gallery.sqlite").is_file()
    monkeypatch.delenv("FACECORE_GALLERY_DIR")
    monkeypatch.chdir(tmp_path)
    assert Gallery().root == (tmp_path / "gallery").resolve()


def test_duplicate_names_are_rejected_whatever_their_case(tmp_path: Path, gallery_at) -> None:
    gallery = gallery_at(tmp_path)
    obama = gallery.create_person("Barack Obama")
    elise = gallery.create_person("Élise Martin")
    before = (gallery.people(), gallery.revision())

    for name in ("barack obama", "  BARACK OBAMA  "):
        with pytest.raises(GalleryError, match=r"^A person named 'Barack Obama' already exists\.$"):
            gallery.create_person(name)
    with pytest.raises(GalleryError, match="already exists"):
        gallery.create_person("élise martin")  # beyond ASCII, which SQLite's NOCASE alone would miss
    with pytest.raises(GalleryError, match="already exists"):
        gallery.rename_person(elise.id, "BARACK obama")
    assert (gallery.people(), gallery.revision()) == before

    assert gallery.rename_person(obama.id, "barack obama").name == "barack obama"  # own name, new case


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("   \t ", "empty"),
        ("Bad\x00Name", "control characters"),
        ("two\nlines", "control characters"),
        ("x" * 101, "at most 100"),
        ("Eve\u202eboB", "bidirectional control"),  # right-to-left override: displays as 'Eve' + 'Bobe'
        ("Ali\u2066ce\u2069", "bidirectional control"),  # isolates
        ("Ann\u200f", "bidirectional control"),  # a right-to-left mark
        ("Bo\u200bb", "zero-width"),
        ("\ufeffBob", "zero-width"),
        ("Bo\u200db", "zero-width"),  # a joiner between ASCII letters joins nothing
        ("Bob\u2060", "zero-width"),
        # other invisible characters: format characters (Cf) and default-ignorable marks and fillers
        ("Bob\u2061by", r"invisible character U\+2061 \(FUNCTION APPLICATION\)"),
        ("Bob\u2064", r"U\+2064 \(INVISIBLE PLUS\)"),
        ("Eve\u206a", r"U\+206A \(INHIBIT SYMMETRIC SWAPPING\)"),
        ("Ev\u180ee", r"U\+180E \(MONGOLIAN VOWEL SEPARATOR\)"),
        ("\u3164Bob", r"U\+3164 \(HANGUL FILLER\)"),
        ("Bob\uffa0", r"U\+FFA0 \(HALFWIDTH HANGUL FILLER\)"),
        ("B\u115fob", r"U\+115F \(HANGUL CHOSEONG FILLER\)"),
        ("Bo\u1160b", r"U\+1160 \(HANGUL JUNGSEONG FILLER\)"),
        ("Bob\U000e0041\U000e007f", r"U\+E0041 \(TAG LATIN CAPITAL LETTER A\)"),
        ("Bo\u034fb", r"U\+034F \(COMBINING GRAPHEME JOINER\)"),
        ("Bob\ufe0f", r"U\+FE0F \(VARIATION SELECTOR-16\)"),
        ("Bob\U000e0100", r"U\+E0100 \(VARIATION SELECTOR-17\)"),
        ("\u1820\u180b", r"U\+180B \(MONGOLIAN FREE VARIATION SELECTOR ONE\)"),
        ("\u0600Ali", r"U\+0600 \(ARABIC NUMBER SIGN\)"),  # any other Cf
    ],
)
def test_bad_names_are_rejected(tmp_path: Path, name: str, reason: str, gallery_at) -> None:
    gallery = gallery_at(tmp_path)
    with pytest.raises(GalleryError, match=reason):
        gallery.create_person(name)
    assert gallery.people() == [] and gallery.revision() == 0
    assert gallery.create_person("x" * 100).name == "x" * 100


def test_joiners_are_kept_where_a_script_needs_them_and_never_make_a_look_alike(tmp_path: Path) -> None:
    gallery = Gallery(tmp_path)
    persian = gallery.create_person("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645")  # ZWNJ in Persian
    assert "\u200c" in persian.name
    with pytest.raises(GalleryError, match="already exists"):  # the same letters without the joiner
        gallery.create_person("\u0645\u06cc\u062e\u0648\u0627\u0647\u0645")


def test_an_invisible_character_cannot_make_a_second_bobby(tmp_path: Path) -> None:
    gallery = Gallery(tmp_path)
    bobby = gallery.create_person("Bobby")
    for hidden in ("\u2061", "\u2062", "\u2063", "\u206f", "\u180e", "\u3164", "\U000e0020", "\ufe00"):
        with pytest.raises(GalleryError, match=f"U\\+{ord(hidden):04X}.*Type the name without it"):
            gallery.create_person(f"Bob{hidden}by")
        with pytest.raises(GalleryError, match=f"U\\+{ord(hidden):04X}"):
            gallery.rename_person(bobby.id, f"Bobby{hidden}")
    assert [p.name for p in gallery.people()] == ["Bobby"]
    # a visible emoji and a joined emoji sequence are still names
    assert gallery.create_person("\u2764 Bob").name == "\u2764 Bob"
    assert gallery.create_person("\U0001f469\U0001f3fd\u200d\U0001f52c Ann").name.startswith("\U0001f469")


def test_names_that_look_like_paths_never_reach_the_filesystem(tmp_path: Path, embedded, model: str) -> None:
    root = tmp_path / "deep" / "gallery"
    gallery = Gallery(root)
    data, face = embedded("kit_harington", 2)
    for name in ("../../etc", "a/b", "..", "/tmp/x"):
        person = gallery.create_person(name)
        assert person.name == name
        gallery.add_face(person.id, data, face, model)
    assert files_under(tmp_path) == files_under(root)
    assert {p.parent for p in files_under(root)} <= {root, root / "faces", root / "chips", root / "index"}
    assert not any(
        part in {"etc", "a", "b", "x"} for p in files_under(root) for part in p.relative_to(root).parts
    )


# ----------------------------------------------------------------------------- identification


def test_enrolled_people_are_identified(enrolled: Path, embedded, model: str, gallery_at) -> None:
    gallery = gallery_at(enrolled)
    for person, n, expected in (("obama", 4, "Barack Obama"), ("biden", 2, "Joe Biden")):
        result = gallery.identify(embedded(person, n)[1].embedding, threshold=THRESHOLD, model_version=model)
        assert result.name == expected
        assert result.distance is not None and result.distance < THRESHOLD
        assert result.best == result.matches[0] and result.best.person_name == expected
        assert result.vote_winner == expected
        distances = [m.distance for m in result.matches]
        assert len(result.matches) == 4 and distances == sorted(distances)  # k=5 > 4 faces: all of them


def test_search_distances_are_euclidean(enrolled: Path, embedded, model: str, gallery_at) -> None:
    gallery = gallery_at(enrolled)
    probe = embedded("obama", 4)[1].embedding
    face_ids, _, vectors = gallery.embeddings(model)
    expected = dict(zip(face_ids.tolist(), np.linalg.norm(vectors - probe, axis=1), strict=True))
    for match in gallery.search(probe, k=3, model_version=model):
        assert match.distance == pytest.approx(expected[match.face_id], abs=1e-4)


def test_a_stranger_is_unknown(enrolled: Path, embedded, model: str, gallery_at) -> None:
    result = gallery_at(enrolled).identify(
        embedded("angelina_jolie", 1)[1].embedding, threshold=THRESHOLD, k=3, model_version=model
    )
    assert result.name == "unknown"
    assert result.best is not None and result.distance is not None and result.distance > THRESHOLD
    assert result.votes == {} and result.vote_winner is None
    assert len(result.matches) == 3


def test_an_empty_gallery_knows_nobody(tmp_path: Path, embedded, model: str, gallery_at) -> None:
    result = gallery_at(tmp_path).identify(
        embedded("obama", 4)[1].embedding, threshold=THRESHOLD, model_version=model
    )
    assert (result.name, result.best, result.distance, result.matches, result.vote_winner) == (
        "unknown",
        None,
        None,
        [],
        None,
    )


def test_faces_of_another_model_version_are_never_compared(tmp_path: Path, embedded, model: str, gallery_at) -> None:
    gallery = gallery_at(tmp_path)
    person = gallery.create_person("Barack Obama")
    data, face = embedded("obama", 4)
    gallery.add_face(person.id, data, face, "some-other-model")
    assert gallery.search(face.embedding, model_version=model) == []
    assert [m.person_name for m in gallery.search(face.embedding, model_version="some-other-model")] == [
        "Barack Obama"
    ]


def test_each_model_version_keeps_its_own_embedding_size(tmp_path: Path, embedded, model: str, gallery_at) -> None:
    # A kept .keras model may embed to another size than the pretrained model's 128.
    gallery = gallery_at(tmp_path)
    person = gallery.create_person("Barack Obama")
    data, face = embedded("obama", 1)
    other_data, other_face = embedded("obama", 2)
    short = dataclasses.replace(face, embedding=face.embedding[:16])
    gallery.add_face(person.id, data, face, model)
    gallery.add_face(person.id, data, short, "keras-file-small")
    assert [m.distance for m in gallery.search(short.embedding, model_version="keras-file-small")] == [0.0]
    assert gallery.search(face.embedding, model_version=model)[0].distance == 0.0
    with pytest.raises(GalleryError, match="16-D embeddings, not 128-D"):
        gallery.add_face(person.id, other_data, other_face, "keras-file-small")
    exported = gallery.export_embeddings()
    assert exported.shape == (2, 3 + 128) and exported.iloc[1, 3 + 16 :].isna().all()


def test_knn_vote_counts_only_faces_within_threshold() -> None:
    matches = [
        Match(1, 1, "A", 0.30),
        Match(2, 2, "B", 0.40),
        Match(3, 2, "B", 0.50),
        Match(4, 1, "A", 0.55),
        Match(5, 3, "C", 0.90),
    ]
    result = identify_decision(matches, threshold=0.6)
    assert result.name == "A" and result.votes == {"A": 2, "B": 2}
    assert result.vote_winner == "A"  # a tie goes to the person with the nearest face
    assert identify_decision(matches, threshold=0.2).name == "unknown"


# ----------------------------------------------------------------------------- enrolment


def test_a_photo_without_a_face_is_rejected_and_nothing_is_stored(tmp_path: Path, pipeline, gallery_at) -> None:
    gallery = gallery_at(tmp_path)
    person = gallery.create_person("Nobody")
    revision = gallery.revision()
    with pytest.raises(GalleryError, match=r"^No face found in this image\.$"):
        gallery.enrol(person.id, plain_jpeg(), pipeline)
    with pytest.raises(GalleryError, match="not an image"):
        gallery.enrol(person.id, b"this is not an image", pipeline)
    assert gallery.faces() == [] and gallery.revision() == revision
    assert stored_images(gallery) == 0


def test_the_same_face_is_not_enrolled_twice(tmp_path: Path, embedded, model: str, gallery_at) -> None:
    gallery = gallery_at(tmp_path)
    person = gallery.create_person("Joe Biden")
    data, face = embedded("biden", 2)
    first = gallery.add_face(person.id, data, face, model)
    with pytest.raises(GalleryError, match=f"already in the gallery for Joe Biden \\(face #{first.id}\\)"):
        gallery.add_face(person.id, data, face, model)
    assert [f.id for f in gallery.faces()] == [first.id]


def test_unknown_ids_are_reported(tmp_path: Path, embedded, model: str, gallery_at) -> None:
    gallery = gallery_at(tmp_path)
    data, face = embedded("biden", 2)
    with pytest.raises(GalleryError, match="no person with id 42"):
        gallery.add_face(42, data, face, model)
    with pytest.raises(GalleryError, match="no face with id 7"):
        gallery.delete_face(7)
    with pytest.raises(GalleryError, match="no person with id 3"):
        gallery.faces(3)
    assert stored_images(gallery) == 0  # nothing written for nobody


def test_a_face_moved_to_another_person_keeps_its_vector_and_is_identified_as_them(
    tmp_path: Path, embedded, model: str, gallery_at
) -> None:
    """A face enrolled under the wrong name, moved: the API's PATCH /faces/{id}, on each store."""
    gallery = gallery_at(tmp_path)
    wrong, right = gallery.create_person("Joe Biden"), gallery.create_person("Barack Obama")
    data, face = embedded("obama", 1)
    stored = gallery.add_face(wrong.id, data, face, model)
    np.testing.assert_array_equal(gallery.face_embedding(stored.id), face.embedding.astype(np.float32))

    moved = gallery.move_face(stored.id, right.id)
    assert (moved.id, moved.person_id, moved.person_name) == (stored.id, right.id, "Barack Obama")
    assert (gallery.person(wrong.id).face_count, gallery.person(right.id).face_count) == (0, 1)
    np.testing.assert_array_equal(gallery.face_embedding(stored.id), face.embedding.astype(np.float32))
    _, probe = embedded("obama", 2)
    assert gallery.identify(probe.embedding, threshold=THRESHOLD, model_version=model).name == "Barack Obama"

    with pytest.raises(GalleryError, match="no person with id 999"):
        gallery.move_face(stored.id, 999)
    with pytest.raises(GalleryError, match="no face with id 999"):
        gallery.move_face(999, right.id)
    with pytest.raises(GalleryError, match="no face with id 999"):
        gallery.face_embedding(999)
    assert gallery.face(stored.id).person_id == right.id  # the refused moves changed nothing


# ----------------------------------------------------------------------------- persistence


def test_a_reopened_gallery_has_the_same_people_and_still_identifies(
    enrolled: Path, embedded, model: str, gallery_at
) -> None:
    with gallery_at(enrolled) as first:
        people, faces = first.people(), first.faces()
    assert [(p.name, p.face_count) for p in people] == [("Barack Obama", 3), ("Joe Biden", 1)]
    assert all(f.chip_path.is_file() for f in faces)

    reopened = gallery_at(enrolled)
    assert (reopened.people(), reopened.faces()) == (people, faces)
    probe = embedded("obama", 4)[1].embedding
    assert reopened.identify(probe, threshold=THRESHOLD, model_version=model).name == "Barack Obama"
    assert reopened.index_size(model) == 4


def test_the_saved_faiss_index_is_reused_rebuilt_when_missing_and_replaced_when_bad(
    tmp_path: Path, pipeline: FacePipeline, faces_small, embedded, model: str
) -> None:
    with Gallery(tmp_path) as first:
        obama = first.create_person("Barack Obama")
        for n in (1, 2):
            first.enrol(obama.id, read_bytes(faces_small["obama"][n - 1]), pipeline)
        assert first.index_size(model) == 2  # builds and saves the index
        assert all(f.chip_path.is_relative_to(tmp_path.resolve()) for f in first.faces())
    (index_file,) = (tmp_path / "index").glob("*.npz")
    saved = index_file.stat().st_mtime_ns
    probe = embedded("obama", 4)[1].embedding
    assert Gallery(tmp_path).identify(probe, threshold=THRESHOLD, model_version=model).name == "Barack Obama"
    assert index_file.stat().st_mtime_ns == saved  # loaded from disk (revision matched), not rebuilt

    index_file.unlink()
    assert Gallery(tmp_path).identify(probe, threshold=THRESHOLD, model_version=model).name == "Barack Obama"
    assert index_file.is_file()  # rebuilt from the database and saved again

    index_file.write_bytes(b"not a faiss index")
    assert Gallery(tmp_path).identify(probe, threshold=THRESHOLD, model_version=model).name == "Barack Obama"
    assert Gallery(tmp_path).index_size(model) == 2


def test_an_index_follows_writes_made_through_another_gallery(tmp_path: Path, embedded, model: str, gallery_at) -> None:
    reader, writer = gallery_at(tmp_path), gallery_at(tmp_path)  # as two processes would
    probe = embedded("obama", 4)[1].embedding
    assert reader.search(probe, model_version=model) == []

    obama = writer.create_person("Barack Obama")
    face = writer.add_face(obama.id, *embedded("obama", 1), model)
    assert [m.face_id for m in reader.search(probe, model_version=model)] == [face.id]

    writer.rename_person(obama.id, "President Obama")
    assert reader.identify(probe, threshold=THRESHOLD, model_version=model).name == "President Obama"

    writer.delete_face(face.id)
    assert reader.search(probe, model_version=model) == []


# ----------------------------------------------------------------------------- concurrency


def test_two_processes_adding_faces_at_once_lose_nothing(
    tmp_path: Path, embedded, model: str, gallery_at, url_at
) -> None:
    gallery = gallery_at(tmp_path)
    person = gallery.create_person("Crowd")
    assert gallery.index_size(model) == 0  # this instance's index must catch up with the others' writes
    _, face = embedded("obama", 4)
    rng = np.random.default_rng(0)
    vectors = [face.embedding + rng.normal(0, 0.01, (50, 128)).astype(np.float32) for _ in range(2)]
    assert len({tiny_jpeg(w, i) for w in range(2) for i in range(50)}) == 100

    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [
        context.Process(
            target=_add_faces_worker,
            args=(url_at(tmp_path), w, person.id, vectors[w], face.chip, model, barrier, results),
        )
        for w in range(2)
    ]
    for worker in workers:
        worker.start()
    outcomes = dict(results.get(timeout=180) for _ in workers)
    for worker in workers:
        worker.join(timeout=30)
    assert outcomes == {0: "ok", 1: "ok"}

    assert len(gallery.faces(person.id)) == 100
    assert gallery.person(person.id).face_count == 100
    assert gallery.index_size(model) == 100
    assert gallery_at(tmp_path).index_size(model) == 100
    assert stored_images(gallery) == 100


def test_threads_sharing_one_gallery(tmp_path: Path, embedded, model: str, gallery_at) -> None:
    gallery = gallery_at(tmp_path)  # as Streamlit sessions share one cached instance
    person = gallery.create_person("Threads")
    _, face = embedded("obama", 4)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(10):
                vector = face.embedding + np.float32(0.001 * (10 * worker + i))
                added = EmbeddedFace(Face((worker, i, 50, 50), 1.0, None, "hog"), vector, face.chip)
                gallery.add_face(person.id, tiny_jpeg(worker, i), added, model)
                gallery.identify(vector, threshold=THRESHOLD, model_version=model)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(gallery.faces()) == 40 and gallery.index_size(model) == 40


# ----------------------------------------------------------------------------- deletion and repair


def test_deleting_a_person_removes_their_faces_and_unshared_files(
    tmp_path: Path, embedded, model: str, gallery_at) -> None:
    gallery = gallery_at(tmp_path)
    kit, fan = gallery.create_person("Kit Harington"), gallery.create_person("Fan")
    shared = embedded("kit_harington", 1)
    own = embedded("kit_harington", 2)
    kept = gallery.add_face(fan.id, *shared, model)  # the same photo, enrolled for someone else too
    gallery.add_face(kit.id, *shared, model)
    only_kit = gallery.add_face(kit.id, *own, model)
    probe = own[1].embedding
    assert gallery.search(probe, k=1, model_version=model)[0].face_id == only_kit.id

    gallery.delete_person(kit.id)
    assert [f.id for f in gallery.faces()] == [kept.id]
    assert {m.face_id for m in gallery.search(probe, model_version=model)} == {kept.id}
    assert kept.chip_path.is_file() and not only_kit.chip_path.exists()
    assert stored_images(gallery) == 1 and gallery.image_bytes(kept.image_sha256) == shared[0]

    gallery.delete_face(kept.id)
    assert stored_images(gallery) == 0 and not kept.chip_path.exists()


def test_repair_drops_faces_without_images_and_files_without_faces(
    tmp_path: Path, embedded, model: str
) -> None:
    gallery = Gallery(tmp_path)
    person = gallery.create_person("Rose Leslie")
    lost = gallery.add_face(person.id, *embedded("rose_leslie", 1), model)
    kept = gallery.add_face(person.id, *embedded("rose_leslie", 2), model)
    (tmp_path / "faces" / f"{lost.image_sha256}.jpg").unlink()
    (tmp_path / "chips" / ("0" * 64 + ".png")).write_bytes(b"orphan")

    report = gallery.repair()
    assert (report.faces_removed, report.files_removed, report.chips_missing) == (1, 2, 0)
    assert [f.id for f in gallery.faces()] == [kept.id]
    assert gallery.index_size(model) == 1
    assert Gallery(tmp_path).index_size(model) == 1


# ----------------------------------------------------------------------------- export


def test_export_csv_and_npz(enrolled: Path, model: str, gallery_at) -> None:
    gallery = gallery_at(enrolled)
    face_ids, _, vectors = gallery.embeddings(model)

    table = gallery.export_embeddings()
    assert list(table.columns) == ["face_id", "person", "model_version", *(f"e{i}" for i in range(128))]
    assert table["person"].tolist() == ["Barack Obama"] * 3 + ["Joe Biden"]
    again = pd.read_csv(io.StringIO(table.to_csv(index=False)))
    assert again["face_id"].tolist() == face_ids.tolist()
    np.testing.assert_allclose(again[[f"e{i}" for i in range(128)]].to_numpy(), vectors, atol=1e-6)
    assert gallery.export_embeddings("no-such-model").shape == (0, 131)

    with np.load(io.BytesIO(gallery.export_npz_bytes()), allow_pickle=False) as saved:
        np.testing.assert_array_equal(saved["embeddings"], vectors)
        np.testing.assert_array_equal(saved["face_ids"], face_ids)
        assert saved["labels"].tolist() == ["Barack Obama"] * 3 + ["Joe Biden"]
        assert set(saved["model_versions"].tolist()) == {model}


# ----------------------------------------------------------------------------- importing many photos




def test_a_zip_with_one_folder_per_person_is_enrolled_and_its_bad_files_reported(
    tmp_path: Path, pipeline, faces_small, model: str, gallery_at) -> None:
    photo = {(p, n): read_bytes(faces_small[p][n - 1]) for p, n in [("obama", 1), ("obama", 2), ("biden", 1)]}
    data = zip_bytes(
        {
            # One top folder wraps the person folders; it is not a person.
            "people/Barack_Obama/1.jpg": photo["obama", 1],
            "people/Barack_Obama/2.JPG": photo["obama", 2],
            "people/Barack_Obama/notes.txt": b"not a photo, and not named like one",
            "people/Joe_Biden/1.jpg": photo["biden", 1],
            "people/Nobody/landscape.jpg": plain_jpeg(),
            "people/Broken/photo.jpg": b"named like a photo, but it is not one",
            "people/README.md": b"# a file beside the person folders",
            "__MACOSX/people/Joe_Biden/._1.jpg": b"resource fork",
        }
    )
    jobs = zip_jobs(data)
    assert sorted((job.person, job.source) for job in jobs) == [
        ("Barack Obama", "people/Barack_Obama/1.jpg"),
        ("Barack Obama", "people/Barack_Obama/2.JPG"),
        ("Broken", "people/Broken/photo.jpg"),
        ("Joe Biden", "people/Joe_Biden/1.jpg"),
        ("Nobody", "people/Nobody/landscape.jpg"),
    ]
    assert isinstance(jobs[0], ImportJob) and jobs[0].read() == photo["obama", 1]

    gallery = gallery_at(tmp_path)
    seen: list[tuple[str, bool, str | None]] = []
    progress: list[tuple[int, int]] = []
    report = enrol_many(
        gallery,
        pipeline,
        jobs,
        progress=lambda done, total: progress.append((done, total)),
        on_result=lambda job, face, problem: seen.append((job.source, face is not None, problem)),
    )
    assert isinstance(report, ImportReport)
    assert sorted(f.person_name for f in report.enrolled) == ["Barack Obama", "Barack Obama", "Joe Biden"]
    assert len(report.problems) == 2
    assert report.problems[0] == "people/Nobody/landscape.jpg: No face found in this image."
    assert report.problems[1].startswith("people/Broken/photo.jpg: This file is not an image")
    assert report.people == 2 and report.summary() == "Enrolled 3 face(s) for 2 person(s). Skipped 2 file(s)."
    assert progress == [(i, 5) for i in range(1, 6)] and len(seen) == 5
    # The people created for folders whose photos all failed are removed again.
    assert {p.name: p.face_count for p in gallery.people()} == {"Barack Obama": 2, "Joe Biden": 1}
    assert all(f.model_version == model for f in gallery.faces())
    # The same zip again adds nothing: every face is already there, and nobody is created twice.
    again = enrol_many(gallery, pipeline, zip_jobs(data))
    assert again.enrolled == [] and len(again.problems) == 5
    assert sum("already in the gallery" in p for p in again.problems) == 3
    assert len(gallery.people()) == 2 and len(gallery.faces()) == 3


def test_zip_jobs_without_a_wrapping_folder_skip_loose_and_nested_files() -> None:
    jobs = zip_jobs(
        zip_bytes(
            {
                "Ada_Lovelace/1.png": b"1",
                "Ada_Lovelace/2.webp": b"2",
                "cover.jpg": b"loose: whose face is it?",
                "Grace_Hopper/old/1.jpg": b"nested too deep",
                "Grace_Hopper/1.jpeg": b"3",
                ".hidden/1.jpg": b"hidden folder",
            }
        )
    )
    assert [(job.person, job.source, job.read()) for job in jobs] == [
        ("Ada Lovelace", "Ada_Lovelace/1.png", b"1"),
        ("Ada Lovelace", "Ada_Lovelace/2.webp", b"2"),
        ("Grace Hopper", "Grace_Hopper/1.jpeg", b"3"),
    ]
    assert zip_jobs(zip_bytes({"readme.txt": b"no photos here"})) == []


def test_a_bad_or_oversized_zip_is_refused_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(GalleryError, match="cannot be read as a zip"):
        zip_jobs(b"PK\x03\x04 but not really a zip")
    with pytest.raises(GalleryError, match="cannot be read as a zip"):
        zip_jobs(b"")
    photos = {f"Ada/{i}.jpg": b"x" for i in range(3)}
    monkeypatch.setattr(importing, "ZIP_MAX_FILES", 2)
    with pytest.raises(GalleryError, match=r"too large \(limit 2 images"):
        zip_jobs(zip_bytes(photos))
    monkeypatch.setattr(importing, "ZIP_MAX_FILES", 5000)
    monkeypatch.setattr(importing, "ZIP_MAX_BYTES", 2)  # the three photos unpack to 3 bytes
    with pytest.raises(GalleryError, match="too large"):
        zip_jobs(zip_bytes(photos))


def test_folder_and_photo_jobs(tmp_path: Path, pipeline, faces_small, gallery_at) -> None:
    jobs = folder_jobs({"kit_harington": faces_small["kit_harington"], "rose_leslie": faces_small["rose_leslie"]}, 2)
    assert [(job.person, job.source) for job in jobs] == [
        ("kit harington", "1.jpg"),
        ("kit harington", "2.jpg"),
        ("rose leslie", "1.jpg"),
        ("rose leslie", "2.jpg"),
    ]
    assert jobs[3].read() == read_bytes(faces_small["rose_leslie"][1])
    uploads = photo_jobs("Paul Rudd", [(read_bytes(faces_small["paul_rudd"][0]), "rudd.jpg"), (b"", "empty.jpg")])
    assert [(job.person, job.source) for job in uploads] == [("Paul Rudd", "rudd.jpg"), ("Paul Rudd", "empty.jpg")]

    gallery = gallery_at(tmp_path)
    existing = gallery.create_person("PAUL RUDD")  # found again whatever the case: no second person
    report = enrol_many(gallery, pipeline, uploads)
    assert [f.person_id for f in report.enrolled] == [existing.id]
    assert report.problems == ["empty.jpg: The image file is empty."]
    assert [p.name for p in gallery.people()] == ["PAUL RUDD"]


# ----------------------------------------------------------------------------- one URL picks the store


def test_the_gallery_url_picks_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_server) -> None:
    from facecore.gallery.postgres import PostgresGallery

    monkeypatch.delenv("FACECORE_GALLERY_URL", raising=False)
    monkeypatch.setenv("FACECORE_GALLERY_DIR", str(tmp_path / "from-dir"))
    assert gallery_url() == f"sqlite://{(tmp_path / 'from-dir').resolve()}"
    assert open_gallery().root == (tmp_path / "from-dir").resolve()

    monkeypatch.setenv("FACECORE_GALLERY_URL", f"sqlite://{tmp_path / 'from-url'}")
    assert open_gallery().root == (tmp_path / "from-url").resolve()

    monkeypatch.setenv("FACECORE_GALLERY_URL", postgres_server.url_at(tmp_path))
    with open_gallery() as gallery:
        assert isinstance(gallery, PostgresGallery)
        gallery.create_person("Ada Lovelace")
    assert [p.name for p in open_gallery(postgres_server.url_at(tmp_path)).people()] == ["Ada Lovelace"]

    with pytest.raises(GalleryError, match=r"No gallery store for 'mysql://'; use one of sqlite://, postgresql://"):
        open_gallery("mysql://db/gallery")
    with pytest.raises(GalleryError, match="is not a gallery URL"):
        open_gallery("gallery-folder")
    with pytest.raises(GalleryError, match="Cannot open the PostgreSQL gallery"):
        open_gallery(f"postgresql://nobody@/nowhere?host={tmp_path}")
