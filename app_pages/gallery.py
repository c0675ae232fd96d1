"""Gallery: the people the Identify page can recognise, built from photos, a folder, a zip or LFW."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import pandas as pd
import streamlit as st

from facecore.evaluation.datasets import default_lfw_home, download_lfw, image_folder, lfw_people
from ui.common import (
    current_settings,
    flash,
    gallery_root,
    images_input,
    load_gallery,
    settings_pipeline,
    show_flashes,
    thumbnail_uri,
)

settings = current_settings()

try:
    from facecore.gallery import GalleryError

    gallery = load_gallery()
except Exception as exc:  # a broken or unwritable gallery folder must not show a traceback
    st.title("Gallery")
    st.error(f"The gallery at {gallery_root()} cannot be opened: {exc}")
    st.stop()

ZIP_MAX_FILES = 5000
ZIP_MAX_BYTES = 1_000_000_000  # uncompressed total
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}

# ----------------------------------------------------------------------------- callbacks
# Widget callbacks run before the page, so every part of this run already sees the change.


def create_person() -> None:
    name = st.session_state.get("new_person_name", "")
    try:
        person = gallery.create_person(name)
    except GalleryError as exc:
        flash("error", str(exc))
        return
    st.session_state["new_person_name"] = ""
    st.session_state["manage_person"] = person.id
    st.session_state["enrol_person"] = person.id
    flash("success", f"Created {person.name}. Add photos of them in the 'Add faces' tab.")


def rename_person(person_id: int) -> None:
    new_name = st.session_state.get(f"rename_{person_id}", "")
    try:
        gallery.rename_person(person_id, new_name)
    except GalleryError as exc:
        flash("error", str(exc))
        return
    flash("success", f"Renamed to {new_name.strip()}.")


def ask_delete(person_id: int | None) -> None:
    st.session_state["_confirm_delete"] = person_id


def delete_person(person_id: int, name: str) -> None:
    st.session_state["_confirm_delete"] = None
    try:
        gallery.delete_person(person_id)
    except GalleryError as exc:
        flash("error", str(exc))
        return
    flash("success", f"Deleted {name} and their faces.")


def delete_face(face_id: int) -> None:
    try:
        gallery.delete_face(face_id)
    except GalleryError as exc:
        flash("error", str(exc))
        return
    flash("success", "Face deleted.")


# ----------------------------------------------------------------------------- enrolment


def enrol_many(
    jobs: list[tuple[str, str, Callable[[], bytes]]], *, label: str, show_each: bool
) -> tuple[int, list[str]]:
    """Enrol ``(person name, file name, read bytes)`` jobs with a progress bar.

    People are created as needed. Returns ``(faces enrolled, problems)``; a bad file or one without a
    face is reported and skipped.
    """
    try:
        pipeline = settings_pipeline(settings)
    except Exception as exc:  # e.g. a kept model file that became unreadable
        st.error(f"The {settings.model} model could not be loaded ({type(exc).__name__}: {exc}).")
        return 0, [f"{settings.model}: {exc}"]
    bar = st.progress(0.0, text=label)
    ids: dict[str, int] = {}
    enrolled, problems = 0, []
    for i, (person_name, file_name, read) in enumerate(jobs, start=1):
        try:
            if person_name not in ids:
                found = gallery.find_person(person_name)
                ids[person_name] = (found or gallery.create_person(person_name)).id
            face = gallery.enrol(ids[person_name], read(), pipeline)
        except (GalleryError, ValueError, OSError) as exc:  # ImageError is a ValueError
            problems.append(f"{file_name}: {exc}")
            if show_each:
                st.error(f"{file_name}: {exc}")
        except Exception as exc:  # never let one file stop the batch with a traceback
            problems.append(f"{file_name}: failed ({type(exc).__name__}: {exc})")
            if show_each:
                st.error(problems[-1])
        else:
            enrolled += 1
            if show_each:
                x, y, w, h = face.box
                st.success(f"{file_name}: enrolled a {w}x{h} px face for {person_name}.")
        bar.progress(i / len(jobs), text=f"{label} {i}/{len(jobs)}")
    return enrolled, problems


def summary(enrolled: int, problems: list[str], people: int) -> None:
    if enrolled:
        st.success(f"Enrolled {enrolled} face(s) for {people} person(s).")
    if problems:
        st.warning(f"Skipped {len(problems)} file(s).")
        with st.expander("Skipped files"):
            st.text("\n".join(problems))
    if not enrolled and not problems:
        st.info("There was nothing to import.")


def zip_jobs(data: bytes) -> list[tuple[str, str, Callable[[], bytes]]]:
    """Jobs from a zip with one folder per person (optionally all inside one top folder)."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    entries = [
        info
        for info in archive.infolist()
        if not info.is_dir()
        and PurePosixPath(info.filename).suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith((".", "__MACOSX")) for part in PurePosixPath(info.filename).parts)
    ]
    if len(entries) > ZIP_MAX_FILES or sum(i.file_size for i in entries) > ZIP_MAX_BYTES:
        raise ValueError(
            f"The zip is too large (limit {ZIP_MAX_FILES} images, {ZIP_MAX_BYTES / 1e9:g} GB unpacked)."
        )
    parts = [PurePosixPath(i.filename).parts for i in entries]
    # A single top folder wrapping the person folders ("people/<name>/x.jpg") is skipped.
    strip = 1 if parts and all(len(p) >= 3 for p in parts) and len({p[0] for p in parts}) == 1 else 0
    jobs = []
    for info, p in zip(entries, parts, strict=True):
        p = p[strip:]
        if len(p) != 2:  # not <person>/<image>
            continue
        jobs.append((p[0].replace("_", " "), info.filename, lambda info=info: archive.read(info)))
    return jobs


@st.cache_data(show_spinner="Listing LFW people...", max_entries=8)
def lfw_candidates(home: str, min_images: int) -> dict[str, list[str]]:
    return {name: [str(p) for p in paths] for name, paths in lfw_people(home, min_images=min_images).items()}


# ----------------------------------------------------------------------------- page

st.title("Gallery")
st.caption(
    f"The people Identify can recognise. Stored in `{gallery_root()}` (set FACECORE_GALLERY_DIR for "
    f"another folder). New faces are found with the **{settings.detector}** detector"
    f"{' and flip TTA' if settings.flip_tta else ''} from the sidebar; each photo adds its largest face."
)
show_flashes()

tab_people, tab_add, tab_import, tab_export = st.tabs(
    ["People", "Add faces", "Import", "Export"], key="gallery_tab"  # keyed: the chosen tab survives reruns
)

# The tabs that change the gallery run first, so the People tab below shows their result.
with tab_add:
    people = gallery.people()
    if not people:
        st.info("Create a person in the People tab first.")
    else:
        by_id = {p.id: p for p in people}
        if st.session_state.get("enrol_person") not in by_id:
            st.session_state["enrol_person"] = people[0].id
        person_id = st.selectbox(
            "Person", list(by_id), format_func=lambda i: by_id[i].name, key="enrol_person"
        )
        st.caption(
            f"Faces are embedded with {settings.model}{' and flip TTA' if settings.flip_tta else ''} "
            "(sidebar); Identify searches each model's faces apart."
        )
        nonce = st.session_state.setdefault("_enrol_nonce", 0)
        items = images_input("Photos from", f"enrol_{nonce}")
        if st.button(
            f"Enrol {len(items)} photo(s)" if items else "Enrol",
            disabled=not items,
            type="primary",
            key="enrol_go",
        ):
            jobs = [(by_id[person_id].name, name, lambda data=data: data) for data, name in items]
            enrolled, problems = enrol_many(jobs, label="Enrolling", show_each=True)
            st.session_state["_enrol_nonce"] = nonce + 1  # empty uploader on the next run

with tab_import:
    st.markdown("**A folder or a zip with one sub-folder per person** (`<person>/<photo>.jpg`)")
    source = st.radio(
        "Import from", ["Folder on this machine", "Zip file"], horizontal=True, key="import_source"
    )
    if source == "Folder on this machine":
        folder = st.text_input("Folder path", key="import_folder", placeholder="/data/people")
        if st.button("Import folder", disabled=not folder.strip(), key="import_folder_go"):
            try:
                found = image_folder(Path(folder.strip()).expanduser())
            except (OSError, ValueError) as exc:
                st.error(f"Cannot read that folder: {exc}")
            else:
                jobs = [
                    (name.replace("_", " "), str(path), lambda path=path: path.read_bytes())
                    for name, paths in found.items()
                    for path in paths
                ]
                if not jobs:
                    st.warning(
                        "No images found: expected one sub-folder per person holding jpg/png/webp/bmp files."
                    )
                else:
                    summary(*enrol_many(jobs, label="Importing", show_each=False), people=len(found))
    else:
        upload = st.file_uploader("Zip file", type=["zip"], key="import_zip")
        if st.button("Import zip", disabled=upload is None, key="import_zip_go") and upload is not None:
            try:
                jobs = zip_jobs(upload.getvalue())
            except (zipfile.BadZipFile, ValueError, OSError) as exc:
                st.error(f"Cannot read {upload.name} as a zip file: {exc}")
            else:
                if not jobs:
                    st.warning(
                        "No images found in the zip: expected one folder per person (`<person>/<photo>.jpg`)."
                    )
                else:
                    summary(
                        *enrol_many(jobs, label="Importing", show_each=False),
                        people=len({j[0] for j in jobs}),
                    )

    st.divider()
    st.markdown("**Demo gallery from LFW** (Labeled Faces in the Wild)")
    home = st.session_state.get("_lfw_home") or default_lfw_home()
    if home is None or not (Path(home) / "lfw_home").is_dir():
        where = f" at {home}" if home is not None else ""
        st.info(
            f"No local copy of LFW was found{where} (set FACECORE_LFW_HOME to a folder holding `lfw_home/`). "
            "You can download it (about 200 MB through scikit-learn). **This needs internet access.**"
        )
        target = st.text_input(
            "Download into", value=str(Path.home() / "scikit_learn_data"), key="lfw_target"
        )
        if st.button("Download LFW", key="lfw_download"):
            try:
                with st.spinner("Downloading LFW (about 200 MB)..."):
                    st.session_state["_lfw_home"] = str(download_lfw(target))
            except Exception as exc:
                st.error(
                    f"The download failed: {exc}. It needs internet access; without it, copy LFW in "
                    "scikit-learn's layout to a folder and set FACECORE_LFW_HOME to it."
                )
            else:
                st.rerun()
    else:
        left, right = st.columns(2)
        min_images = left.number_input("People with at least this many photos", 2, 500, 20, key="lfw_min")
        per_person = right.number_input("Photos per person (at most)", 1, 50, 5, key="lfw_per_person")
        try:
            candidates = lfw_candidates(str(home), int(min_images))
        except (OSError, ValueError) as exc:
            st.error(f"Cannot read LFW at {home}: {exc}")
            candidates = {}
        count = sum(min(len(v), int(per_person)) for v in candidates.values())
        st.caption(
            f"{len(candidates)} LFW people have at least {min_images} photos: {count} photos to enrol."
        )
        if st.button(
            f"Load a demo gallery ({len(candidates)} people)", disabled=not candidates, key="lfw_go"
        ):
            jobs = [
                (name.replace("_", " "), Path(path).name, lambda path=path: Path(path).read_bytes())
                for name, paths in candidates.items()
                for path in paths[: int(per_person)]
            ]
            summary(*enrol_many(jobs, label="Enrolling LFW", show_each=False), people=len(candidates))

with tab_people:
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    left.text_input("New person", key="new_person_name", placeholder="Name")
    right.button("Create person", on_click=create_person, key="create_person", width="stretch")

    people = gallery.people()
    if not people:
        st.info(
            "The gallery is empty. Create a person above, then add photos; or import a folder, a zip or LFW."
        )
    else:
        table = pd.DataFrame(
            [
                {
                    "photo": next(
                        (thumbnail_uri(str(f.chip_path)) for f in gallery.faces(p.id)[:1]),
                        None,
                    ),
                    "name": p.name,
                    "faces": p.face_count,
                    "created (UTC)": pd.to_datetime(p.created, unit="s").floor("s"),
                }
                for p in people
            ]
        )
        st.dataframe(
            table,
            hide_index=True,
            width="stretch",
            column_config={"photo": st.column_config.ImageColumn("photo", width="small")},
        )

        st.subheader("Manage a person")
        by_id = {p.id: p for p in people}
        if st.session_state.get("manage_person") not in by_id:
            st.session_state["manage_person"] = people[0].id
        chosen = st.selectbox("Person", list(by_id), format_func=lambda i: by_id[i].name, key="manage_person")
        person = by_id[chosen]
        with st.container(border=True):
            a, b = st.columns([3, 1], vertical_alignment="bottom")
            a.text_input("Name", value=person.name, key=f"rename_{person.id}")
            b.button(
                "Rename",
                on_click=rename_person,
                args=(person.id,),
                key=f"rename_go_{person.id}",
                width="stretch",
            )
            if st.session_state.get("_confirm_delete") == person.id:
                st.warning(
                    f"Delete {person.name} and their {person.face_count} face(s)? This cannot be undone."
                )
                c1, c2 = st.columns(2)
                c1.button(
                    "Yes, delete",
                    type="primary",
                    on_click=delete_person,
                    args=(person.id, person.name),
                    key=f"delete_yes_{person.id}",
                )
                c2.button("Cancel", on_click=ask_delete, args=(None,), key=f"delete_no_{person.id}")
            else:
                st.button("Delete person", on_click=ask_delete, args=(person.id,), key=f"delete_{person.id}")

            faces = gallery.faces(person.id)
            if not faces:
                st.info(f"{person.name} has no faces yet: add photos in the 'Add faces' tab.")
            columns = st.columns(6)
            for i, face in enumerate(faces):
                with columns[i % 6]:
                    try:
                        st.image(str(face.chip_path), width=110, caption=f"#{face.id} ({face.detector})")
                    except Exception:
                        st.caption(f"#{face.id}: stored chip missing")
                    st.button(
                        "Delete",
                        on_click=delete_face,
                        args=(face.id,),
                        key=f"delete_face_{face.id}",
                        icon=":material/delete:",
                    )

with tab_export:
    stats = gallery.stats()
    people_count = len(gallery.people())
    st.write(f"{people_count} people, {len(gallery.faces())} faces.")
    if isinstance(stats, dict) and stats:
        st.json(stats, expanded=False)
    has_faces = bool(gallery.faces())
    c1, c2 = st.columns(2)
    c1.download_button(
        "Embeddings as CSV",
        data=lambda: gallery.export_embeddings().to_csv(index=False),
        file_name="gallery_embeddings.csv",
        mime="text/csv",
        disabled=not has_faces,
        key="export_csv",
        on_click="ignore",
    )
    c2.download_button(
        "Embeddings as NPZ",
        data=gallery.export_npz_bytes,
        file_name="gallery_embeddings.npz",
        mime="application/octet-stream",
        disabled=not has_faces,
        key="export_npz",
        on_click="ignore",
    )
