"""Gallery: the people the Identify page can recognise, built from photos, a folder, a zip or LFW.

Server folders are read only under ``$FACECORE_IMPORT_ROOT`` (``facecore.gallery.import_root``); with
it unset the page offers uploads only.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from facecore.evaluation.datasets import image_folder, lfw_people
from facecore.gallery.import_root import allowed_import_root, keep_inside, resolve_under
from facecore.gallery.importing import ImportJob, ImportReport, enrol_many, folder_jobs, photo_jobs, zip_jobs
from ui.audit_trail import log_change
from ui.data import lfw_panel
from ui.drawing import thumbnail_uri
from ui.feedback import flash, show_error, show_flashes
from ui.inputs import images_input
from ui.quality import gated, quality_override
from ui.resources import gallery_location, load_gallery, pipeline
from ui.settings import current_settings

settings = current_settings()

try:
    from facecore.gallery import GalleryError

    gallery = load_gallery()
except Exception as exc:  # a broken or unwritable gallery folder must not show a traceback
    st.title("Gallery")
    st.error(f"The gallery at {gallery_location()} cannot be opened: {exc}")
    st.stop()

# ----------------------------------------------------------------------------- callbacks
# Widget callbacks run before the page, so every part of this run already sees the change.


def create_person() -> None:
    name = st.session_state.get("new_person_name", "")
    try:
        person = gallery.create_person(name)
    except GalleryError as exc:
        flash("error", str(exc))
        return
    log_change(gallery, "create person", {"name": person.name}, [person.id])
    st.session_state["new_person_name"] = ""
    st.session_state["manage_person"] = person.id
    st.session_state["enrol_person"] = person.id
    flash("success", f"Created {person.name}. Add photos of them in the 'Add faces' tab.")


def rename_person(person_id: int) -> None:
    new_name = st.session_state.get(f"rename_{person_id}", "")
    try:
        renamed = gallery.rename_person(person_id, new_name)
    except GalleryError as exc:
        flash("error", str(exc))
        return
    log_change(gallery, "rename person", {"name": renamed.name}, [person_id])
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
    log_change(gallery, "delete person", {"name": name}, [person_id])
    flash("success", f"Deleted {name} and their faces.")


def delete_face(face_id: int) -> None:
    try:
        gallery.delete_face(face_id)
    except GalleryError as exc:
        flash("error", str(exc))
        return
    log_change(gallery, "delete face", {"deleted": "face"}, [face_id])
    flash("success", "Face deleted.")


# ----------------------------------------------------------------------------- enrolment


def enrol(jobs: list[ImportJob], *, label: str, show_each: bool, gate: bool = True) -> ImportReport | None:
    """Enrol ``jobs`` with the sidebar's pipeline and a progress bar; None after a message if it cannot load.

    ``show_each`` says, file by file, what was enrolled and what was skipped and why. ``gate``: refuse
    faces below the quality minimums unless the override is ticked (the LFW demo gallery is enrolled
    as LFW gives it: it is the benchmark's own data).
    """
    try:
        face_pipeline = pipeline(settings.config)
    except Exception as exc:  # e.g. a kept model file that became unreadable
        show_error(f"The {settings.config.model_label} model could not be loaded", exc)
        return None
    bar = st.progress(0.0, text=label)

    def each(job: ImportJob, face, problem: str | None) -> None:
        if face is not None:
            _, _, w, h = face.box
            st.success(f"{job.source}: enrolled a {w}x{h} px face for {job.person}.")
        else:
            st.error(problem)

    report = enrol_many(
        gallery,
        gated(face_pipeline) if gate else face_pipeline,
        jobs,
        progress=lambda done, total: bar.progress(done / total, text=f"{label} {done}/{total}"),
        on_result=each if show_each else None,
    )
    if report.enrolled:
        result = {"enrolled": len(report.enrolled), "skipped": len(report.problems), "people": report.people}
        log_change(gallery, "enrol", result, [face.id for face in report.enrolled])
    return report


def summary(report: ImportReport | None) -> None:
    if report is None:
        return
    if report.enrolled:
        st.success(f"Enrolled {len(report.enrolled)} face(s) for {report.people} person(s).")
    if report.problems:
        st.warning(f"Skipped {len(report.problems)} file(s).")
        with st.expander("Skipped files"):
            st.text("\n".join(report.problems))
    if not report.enrolled and not report.problems:
        st.info("There was nothing to import.")


@st.cache_data(show_spinner="Listing LFW people...", max_entries=8)
def lfw_candidates(home: str, min_images: int) -> dict[str, list[str]]:
    return {name: [str(p) for p in paths] for name, paths in lfw_people(home, min_images=min_images).items()}


# ----------------------------------------------------------------------------- page

st.title("Gallery")
st.caption(
    f"The people Identify can recognise. Stored in `{gallery_location()}` (set FACECORE_GALLERY_DIR or FACECORE_GALLERY_URL for "
    f"another place). New faces are found with the **{settings.detector}** detector"
    f"{' and flip TTA' if settings.flip_tta else ''} from the sidebar; each photo adds its largest face."
)
show_flashes()
quality_override()

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
            f"Faces are embedded with {settings.config.model_label}{' and flip TTA' if settings.flip_tta else ''} "
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
            enrol(photo_jobs(by_id[person_id].name, items), label="Enrolling", show_each=True)
            st.session_state["_enrol_nonce"] = nonce + 1  # empty uploader on the next run

with tab_import:
    st.markdown("**A folder or a zip with one sub-folder per person** (`<person>/<photo>.jpg`)")
    try:
        import_root = allowed_import_root()
    except GalleryError as exc:
        st.error(f"Folder import is off: {exc}")
        import_root = None
    sources = ["Folder on the server", "Zip file"] if import_root is not None else ["Zip file"]
    source = st.radio("Import from", sources, horizontal=True, key="import_source")
    if import_root is None:
        st.caption(
            "Upload a zip here, or several photos of one person in the 'Add faces' tab. Importing a folder "
            "on the server is off; set FACECORE_IMPORT_ROOT to the folder it may read from to allow it."
        )
    if source == "Folder on the server" and import_root is not None:
        folder = st.text_input(
            f"Folder under {import_root}", key="import_folder", placeholder="people (relative to the root)"
        )
        if st.button("Import folder", disabled=not folder.strip(), key="import_folder_go"):
            try:
                found = keep_inside(image_folder(resolve_under(import_root, folder)), import_root)
            except GalleryError as exc:
                st.error(str(exc))
            except (OSError, ValueError) as exc:
                st.error(f"Cannot read that folder: {exc}")
            else:
                jobs = folder_jobs(found)
                if not jobs:
                    st.warning(
                        "No images found: expected one sub-folder per person holding jpg/png/webp/bmp files."
                    )
                else:
                    summary(enrol(jobs, label="Importing", show_each=False))
    else:
        upload = st.file_uploader("Zip file", type=["zip"], key="import_zip")
        if st.button("Import zip", disabled=upload is None, key="import_zip_go") and upload is not None:
            try:
                jobs = zip_jobs(upload.getvalue())
            except GalleryError as exc:
                st.error(f"Cannot read {upload.name} as a zip file: {exc}")
            else:
                if not jobs:
                    st.warning(
                        "No images found in the zip: expected one folder per person (`<person>/<photo>.jpg`)."
                    )
                else:
                    summary(enrol(jobs, label="Importing", show_each=False))

    st.divider()
    st.markdown("**Demo gallery from LFW** (Labeled Faces in the Wild)")
    source = lfw_panel("gallery")
    if source is not None:
        home = source.home
        left, right = st.columns(2)
        min_images = left.number_input("People with at least this many photos", 2, 500, 20 if source.full else 8,
                                       key="lfw_min")
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
            jobs = folder_jobs(candidates, per_person=int(per_person))
            summary(enrol(jobs, label="Enrolling LFW", show_each=False, gate=False))

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
