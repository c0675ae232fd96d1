"""Bad and awkward input, end to end: a correct result or a clear message, never a traceback.

The corpus (``tests/bad_inputs.py``) is generated from real photos. Every case goes through
facecore (``load_image`` from bytes, a path and a stream; ``FacePipeline.process_bytes``, with and
without the cache; ``Gallery.enrol``) and a representative subset through each dashboard page with
Streamlit's AppTest (the gallery page takes the whole corpus in one upload and one zip).
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from facecore.cache import EmbeddingCache
from facecore.config import PipelineConfig
from facecore.gallery import Gallery, GalleryError
from facecore.images import ImageError, load_image
from facecore.pipeline import FacePipeline
from tests.bad_inputs import (
    ERROR_KINDS,
    EXIF_ORIENTATIONS,
    KINDS,
    OK_KINDS,
    BadInput,
    bad_input,
    bad_inputs,
    face_photo,
)

APP = Path(__file__).resolve().parents[1] / "app.py"
TIMEOUT = 300  # the first AppTest run in a process loads the models
REFERENCE_PHOTO = ("kit_harington", 1)  # faces_small index of the photo the corpus re-encodes (2.jpg)
# One-face cases that change the pixels a lot: the face is still found, but no claim on the distance.
DEGRADED = {"bilevel_png", "overexposed", "underexposed"}
FAITHFUL_DISTANCE = 0.25  # re-encodings of one photo stay far inside dlib's 0.6 "same person" distance
# The dashboard's uploader only offers these extensions; a browser refuses others before upload.
UPLOAD_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tiff", ".tif"}
# Python's own words that must never reach a person: exception class names, traceback lines.
_INTERNALS = re.compile(
    r"Traceback|File \"|\b[A-Z]\w*(Error|Exception|Warning)\b|struct\.error|0x[0-9a-f]{6,}"
)


# ----------------------------------------------------------------------------- helpers


def assert_clear_message(message: str, fragment: str = "") -> None:
    """A sentence for a person: non-empty, capitalised, ends with a full stop, no Python internals."""
    assert message and message[0].isupper() and message.rstrip().endswith("."), message
    assert len(message) < 300, message
    assert not _INTERNALS.search(message), message
    assert fragment in message, (fragment, message)


def upload_name(case: BadInput) -> str:
    """A unique name the uploader accepts (an unaccepted extension is what a renamed file would carry)."""
    name = f"{case.kind}-{case.filename}"
    return name if Path(name).suffix.lower() in UPLOAD_SUFFIXES else f"{name}.jpg"


def upload(case: BadInput) -> tuple[str, bytes, str]:
    return (upload_name(case), case.data, case.mime)


def joined(elements) -> str:
    return "\n".join(e.value for e in elements)


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    return FacePipeline(PipelineConfig(detector="hog"))  # the dashboard's default detector, for which the corpus states face counts


@pytest.fixture(scope="module")
def reference(pipeline: FacePipeline, faces_small: dict[str, list[Path]]):
    """The face of the photo every one-face case re-encodes."""
    person, index = REFERENCE_PHOTO
    (face,) = pipeline.process_bytes(faces_small[person][index].read_bytes())
    return face


# ----------------------------------------------------------------------------- facecore


def test_the_corpus_is_broad(sample_data: Path) -> None:
    cases = bad_inputs(sample_data)
    assert len(cases) >= 30 and len(ERROR_KINDS) >= 15 and len(OK_KINDS) >= 15
    assert {c.expect for c in cases} == {"error", "ok"}
    assert len({c.data for c in cases}) == len(cases)  # every case is different bytes
    assert {c.faces for c in cases if c.expect == "ok"} >= {0, 1, 20}


@pytest.mark.parametrize("kind", KINDS)
def test_load_image_gives_rgb_or_a_clear_image_error(sample_data: Path, tmp_path: Path, kind: str) -> None:
    case = bad_input(sample_data, kind)
    path = tmp_path / case.filename
    path.write_bytes(case.data)
    for source in (case.data, path, io.BytesIO(case.data)):
        if case.expect == "error":
            with pytest.raises(ImageError) as info:
                load_image(source)
            assert_clear_message(str(info.value), case.message)
        else:
            image = load_image(source)
            assert image.shape == (*case.shape, 3) and image.dtype == np.uint8 and image.flags.c_contiguous


@pytest.mark.parametrize("kind", KINDS)
def test_pipeline_finds_the_stated_faces_or_raises_image_error(
    sample_data: Path, pipeline: FacePipeline, reference, kind: str
) -> None:
    case = bad_input(sample_data, kind)
    if case.expect == "error":
        with pytest.raises(ImageError) as info:
            pipeline.process_bytes(case.data)
        assert_clear_message(str(info.value), case.message)
        return
    found = pipeline.process_bytes(case.data)
    if case.faces is not None:
        assert len(found) == case.faces
    height, width = case.shape
    for face in found:
        x, y, w, h = face.face.box
        assert 0 <= x < width and 0 <= y < height and w > 0 and h > 0
        assert face.chip.shape == (150, 150, 3)
        assert face.embedding.shape == (128,) and np.isfinite(face.embedding).all()
    if case.faces == 1 and case.kind not in DEGRADED:
        # The same photo in another format, mode or orientation: the same face, the same person.
        assert np.abs(np.subtract(found[0].face.box, reference.face.box)).max() <= 4
        assert np.linalg.norm(found[0].embedding - reference.embedding) < FAITHFUL_DISTANCE


def test_cached_results_equal_fresh_ones_and_errors_are_not_cached(
    sample_data: Path, pipeline: FacePipeline, tmp_path: Path
) -> None:
    cached = FacePipeline(
        pipeline.config, detector=pipeline.detector, embedder=pipeline.embedder, cache=EmbeddingCache(tmp_path)
    )
    for case in bad_inputs(sample_data):
        if case.expect == "error":
            with pytest.raises(ImageError):
                cached.process_bytes(case.data)
            continue
        fresh = cached.process_bytes(case.data)
        again = cached.process_bytes(case.data)  # from the cache now
        assert [f.face.box for f in again] == [f.face.box for f in fresh], case.kind
        for a, b in zip(again, fresh, strict=True):
            np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-6)
    assert len(cached.cache) == len(OK_KINDS)


@pytest.mark.parametrize("orientation", EXIF_ORIENTATIONS)
def test_exif_rotated_photo_is_shown_upright_with_its_face(
    sample_data: Path, pipeline: FacePipeline, reference, orientation: int
) -> None:
    # The pixels are stored turned (as a phone writes them) and the EXIF tag turns them back.
    case = bad_input(sample_data, f"exif_orientation_{orientation}")
    upright = np.asarray(face_photo(sample_data), np.int16)
    decoded = load_image(case.data)
    assert decoded.shape == upright.shape
    assert np.abs(decoded.astype(np.int16) - upright).mean() < 4  # JPEG noise only: the same picture
    (face,) = pipeline.process(decoded)
    assert np.abs(np.subtract(face.face.box, reference.face.box)).max() <= 4


def test_gallery_enrols_each_input_or_says_why_not(
    sample_data: Path, pipeline: FacePipeline, tmp_path: Path
) -> None:
    gallery = Gallery(tmp_path / "gallery")
    person = gallery.create_person("Kit Harington")
    enrolled = 0
    for case in bad_inputs(sample_data):
        if case.expect == "error" or case.faces == 0:
            with pytest.raises(GalleryError) as info:
                gallery.enrol(person.id, case.data, pipeline)
            assert_clear_message(str(info.value), case.message if case.expect == "error" else "No face found")
        else:
            face = gallery.enrol(person.id, case.data, pipeline)
            assert face.chip_path.is_file() and face.person_id == person.id
            enrolled += 1
    assert enrolled == sum(1 for k in OK_KINDS if bad_input(sample_data, k).faces)
    assert gallery.person(person.id).face_count == enrolled
    assert gallery.index_size(pipeline.embedder.version) == enrolled
    # Nothing half-stored for the refused files: one image file per enrolled face (all bytes differ).
    assert len(list((tmp_path / "gallery" / "faces").iterdir())) == enrolled


# ----------------------------------------------------------------------------- dashboard pages

# A representative subset per page (the gallery page takes the whole corpus): each kind of failure
# (empty, not an image, truncated, a bomb, an unsupported format) and of awkward success.
VERIFY_PAIRS = [
    ("empty", "random_bytes"),
    ("text_named_jpg", "truncated_jpeg"),
    ("png_bomb", "jpeg_header_20000"),
    ("heic", "png_zero_width"),
    ("cmyk_jpeg", "gray16_png"),
    ("no_face", "ten_pixel_face"),
    ("exif_orientation_6", "animated_gif"),
    ("twenty_faces", "rgba_png"),
]
IDENTIFY_KINDS = [
    "zip_named_png",
    "truncated_png",
    "png_header_100000",
    "all_black",
    "twenty_faces",
    "exif_orientation_8",
]


@pytest.fixture
def gallery_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "gallery"
    monkeypatch.setenv("FACECORE_GALLERY_DIR", str(root))
    return root


def open_page(page: str, sample_data: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def expect_on_page(at: AppTest, case: BadInput) -> None:
    """What a page must show for one uploaded case (in a page that shows one photo's faces)."""
    name = upload_name(case)
    errors, warnings = joined(at.error), joined(at.warning)
    if case.expect == "error":
        line = next((e for e in errors.splitlines() if e.startswith(f"{name}: ")), None)
        assert line is not None, (case.kind, errors)
        assert_clear_message(line.removeprefix(f"{name}: "), case.message)
    elif case.faces == 0:
        assert f"No face found in {name}" in warnings, (case.kind, warnings)
    else:
        assert name not in errors and f"No face found in {name}" not in warnings, (
            case.kind,
            errors,
            warnings,
        )


@pytest.mark.parametrize(("kind_a", "kind_b"), VERIFY_PAIRS, ids=["-".join(p) for p in VERIFY_PAIRS])
def test_verify_page_shows_a_result_or_a_message(
    sample_data: Path, gallery_dir: Path, monkeypatch: pytest.MonkeyPatch, kind_a: str, kind_b: str
) -> None:
    a, b = bad_input(sample_data, kind_a), bad_input(sample_data, kind_b)
    at = open_page("verify", sample_data, monkeypatch)
    at.file_uploader(key="verify_a_upload").set_value(upload(a))
    at.file_uploader(key="verify_b_upload").set_value(upload(b))
    at.run()
    assert not at.exception, at.exception
    expect_on_page(at, a)
    expect_on_page(at, b)
    if a.faces and b.faces:
        if a.faces > 1:
            assert len(at.selectbox(key="verify_a_face").options) == a.faces
        decision = joined(at.success) + joined(at.error)
        assert "Same person" in decision or "Different people" in decision


@pytest.fixture(scope="module")
def enrolled_gallery(tmp_path_factory, pipeline: FacePipeline, faces_small) -> Path:
    root = tmp_path_factory.mktemp("robust-gallery")
    with Gallery(root) as gallery:
        person = gallery.create_person("Kit Harington")
        gallery.enrol(person.id, faces_small["kit_harington"][0].read_bytes(), pipeline)
    return root


@pytest.mark.parametrize("kind", IDENTIFY_KINDS)
def test_identify_page_shows_a_result_or_a_message(
    sample_data: Path, enrolled_gallery: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.setenv("FACECORE_GALLERY_DIR", str(enrolled_gallery))
    case = bad_input(sample_data, kind)
    at = open_page("identify", sample_data, monkeypatch)
    at.file_uploader(key="identify_probe_upload").set_value(upload(case))
    at.run()
    assert not at.exception, at.exception
    expect_on_page(at, case)
    if case.faces:
        # Every face gets a verdict: a known person (success) or "unknown" (warning).
        verdicts = [v for v in (*at.success, *at.warning) if re.match(r"Face \d+: ", v.value)]
        assert len(verdicts) == case.faces
    if kind.startswith("exif_orientation"):
        assert "Kit Harington" in joined(at.success)  # the turned photo of the enrolled person


def test_gallery_page_enrols_the_whole_corpus_or_says_why(
    sample_data: Path, gallery_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Gallery(gallery_dir).create_person("Kit Harington")
    cases = bad_inputs(sample_data)
    at = open_page("gallery", sample_data, monkeypatch)
    at.file_uploader(key="enrol_0_upload").set_value([upload(c) for c in cases])
    at.run()
    at.button(key="enrol_go").click().run()
    assert not at.exception, at.exception
    successes, errors = joined(at.success), joined(at.error)
    for case in cases:
        name = upload_name(case)
        if case.expect == "error":
            assert (
                f"{name}: " in errors and case.message in errors.split(f"{name}: ", 1)[1].splitlines()[0]
            ), case.kind
        elif case.faces == 0:
            assert f"{name}: No face found" in errors, case.kind
        else:
            assert f"{name}: enrolled" in successes, case.kind
    listed = at.dataframe[0].value
    assert listed["faces"].tolist() == [sum(1 for c in cases if c.faces)]


def test_gallery_page_imports_the_corpus_as_a_zip(
    sample_data: Path, gallery_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = bad_inputs(sample_data)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for case in cases:
            zf.writestr(f"people/{case.kind}/{upload_name(case)}", case.data)
    at = open_page("gallery", sample_data, monkeypatch)
    at.radio(key="import_source").set_value("Zip file").run()
    at.file_uploader(key="import_zip").set_value(("corpus.zip", archive.getvalue(), "application/zip")).run()
    at.button(key="import_zip_go").click().run()
    assert not at.exception, at.exception
    with_faces = sum(1 for c in cases if c.faces)
    # One person per case; a person none of whose photos could be enrolled is not kept (nor counted).
    assert f"Enrolled {with_faces} face(s) for {with_faces} person(s)" in joined(at.success)
    assert f"Skipped {len(cases) - with_faces} file(s)" in joined(at.warning)
    skipped = joined(at.text)
    for case in cases:
        if not case.faces:
            assert upload_name(case) in skipped, case.kind

    # A file that is not a zip at all, named .zip, is refused with a message too.
    at.file_uploader(key="import_zip").set_value(
        ("photos.zip", b"PK\x03\x04 not really", "application/zip")
    ).run()
    at.button(key="import_zip_go").click().run()
    assert not at.exception, at.exception
    assert "Cannot read photos.zip as a zip file" in joined(at.error)


# ----------------------------------------------------------------------------- names and paths

# Names that look like paths, shell or SQL, or use many scripts: stored as text, never used in a path.
# (tests/test_gallery.py covers "../../etc", "a/b", "..", "/tmp/x" and the refused control characters.)
AWKWARD_NAMES = [
    "../../../../tmp/escaped",
    "..\\..\\Windows\\System32",
    "a/../../b",
    "%2e%2e%2fetc%2fpasswd",
    "~root/.ssh",
    "$HOME",
    "CON",
    ".",
    "'; DROP TABLE people; --",
    "Zoë Ñúñez-Łukasz",
    "名前 テスト",
    "مرحبا بالعالم",
    "👩‍🔬 Dr. Emoji",
    "é" * 100,
]


def test_awkward_names_stay_text_and_files_are_named_by_content_hash(
    tmp_path: Path, sample_data: Path, pipeline: FacePipeline
) -> None:
    root = tmp_path / "a gallery ü" / "nested"  # spaces and non-ASCII in the root itself are fine
    gallery = Gallery(root)
    photos = [bad_input(sample_data, kind) for kind in ("jpeg", "webp", "png_named_jpg", "bmp")]
    faces = {case.kind: pipeline.process_bytes(case.data)[0] for case in photos}
    for i, name in enumerate(AWKWARD_NAMES):
        person = gallery.create_person(name)
        assert person.name == name and gallery.find_person(name) == person
        case = photos[i % len(photos)]
        gallery.add_face(person.id, case.data, faces[case.kind], pipeline.embedder.version)

    assert sorted(p.name for p in gallery.people()) == sorted(AWKWARD_NAMES)
    everything = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(p.is_relative_to(root) for p in everything)  # nothing escaped the gallery folder
    assert {p.parent for p in everything} <= {root, root / "faces", root / "chips", root / "index"}
    for folder in ("faces", "chips"):
        for path in (root / folder).iterdir():
            assert re.fullmatch(r"[0-9a-f]{64}\.[a-z]+", path.name), path.name
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.stem  # named by its content
    stored = {p.stem: p.suffix for p in (root / "faces").iterdir()}
    assert stored == {
        hashlib.sha256(c.data).hexdigest(): s
        for c, s in zip(photos, (".jpg", ".webp", ".png", ".bmp"), strict=True)
    }


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Zoe\u0308 N\u0303u", "already exists"),  # NFD spelling of a stored NFC name: the same person
        ("ZOË ÑU", "already exists"),  # case-insensitive beyond ASCII
        ("left\u2028right", "control characters"),  # a line separator would break CSV exports and logs
        ("tab\there", "control characters"),
        ("nul\x00byte/../x", "control characters"),
        ("é" * 101, "at most 100"),
    ],
)
def test_awkward_names_that_are_refused_say_why(tmp_path: Path, name: str, reason: str) -> None:
    gallery = Gallery(tmp_path)
    gallery.create_person("Zoë Ñu")
    with pytest.raises(GalleryError) as info:
        gallery.create_person(name)
    assert_clear_message(str(info.value), reason)
    assert [p.name for p in gallery.people()] == ["Zoë Ñu"]


ANALYSIS_UPLOAD_KINDS = ["empty", "truncated_jpeg", "png_bomb", "heic", "no_face", "twenty_faces", "cmyk_jpeg"]


def test_distance_matrix_uploads_keep_the_good_faces_and_name_the_bad_files(
    sample_data: Path, gallery_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = [bad_input(sample_data, kind) for kind in ANALYSIS_UPLOAD_KINDS]
    at = open_page("distance_matrix", sample_data, monkeypatch)
    at.radio(key="dm_source").set_value("Uploaded photos").run()
    at.file_uploader(key="dm_photos_upload").set_value([upload(case) for case in cases])
    at.run()
    assert not at.exception, at.exception
    errors = joined(at.error)
    for case in cases:
        if case.expect == "error":
            assert f"{upload_name(case)}: " in errors, (case.kind, errors)
    expected_faces = sum(case.faces or 0 for case in cases if case.expect == "ok")
    assert at.selectbox(key="dm_a").options == at.selectbox(key="dm_b").options
    assert len(at.selectbox(key="dm_a").options) == expected_faces


@pytest.mark.parametrize("kind", ["random_bytes", "jpeg_header_20000", "no_face"])
def test_embedding_space_probe_says_what_is_wrong(
    sample_data: Path, gallery_dir: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    case = bad_input(sample_data, kind)
    at = open_page("embedding_space", sample_data, monkeypatch)
    at.file_uploader(key="es_probe_upload").set_value(upload(case))
    at.run()
    assert not at.exception, at.exception
    if case.expect == "error":
        assert f"{upload_name(case)}: " in joined(at.error)
    else:
        assert f"No face found in {upload_name(case)}" in joined(at.warning)
