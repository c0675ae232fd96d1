"""A persistent gallery of people and their faces, for 1:1 checks and 1:K identification.

Layout under the root folder (``$FACECORE_GALLERY_DIR``, else ``./gallery``):

* ``gallery.sqlite``: people, faces (box, score, detector, model version, float32 embedding) and a
  ``meta`` table whose ``revision`` goes up with every write. WAL mode, foreign keys on; every write is
  one ``BEGIN IMMEDIATE`` transaction, retried while another writer holds the lock.
* ``faces/<sha256>.<ext>``: each uploaded image once, by content hash (the extension follows the
  content: ``.jpg`` for JPEG); ``chips/<sha256>.png``: the aligned 150x150 chip, for thumbnails.
  Files are written atomically (temp file + ``os.replace``) *before* the row naming them is committed,
  so a row never points at a missing file; a crash can only leave unreferenced files, which
  ``repair()`` removes. File names come only from hashes, never from person names.
* ``index/<sha256(model version)[:16]>.npz``: the FAISS index of one model version together with the
  revision it was built at, in one file so that the vectors and their revision can never disagree.

Searches use an exact FAISS ``IndexFlatL2`` (in an ``IndexIDMap2`` keyed by face id) per model version,
so faces embedded by another model are never compared. Before each search the revision is read; when
another thread or process wrote since, the index is brought up to date by adding and removing face ids
(face ids are never reused, thanks to AUTOINCREMENT, so an id always means the same vector).

Thread and process safety: one SQLite connection per thread, writes serialised by SQLite's lock (also
across processes), the in-memory indexes guarded by a lock. Create a ``Gallery`` after forking (or use
the spawn start method): a connection must not cross a fork.

The store is picked by one URL, ``$FACECORE_GALLERY_URL`` (:mod:`~facecore.gallery.stores`):
``sqlite:///folder`` (the default, the layout above) or ``postgresql://user@host:port/db`` (PostgreSQL +
pgvector, :mod:`~facecore.gallery.postgres`). Open a gallery with :func:`open_gallery`.

Modules, each small enough to read at once:

* :mod:`~facecore.gallery.stores`: gallery URLs, the ``STORES`` registry, ``open_gallery``;
* :mod:`~facecore.gallery.postgres`, :mod:`~facecore.gallery.pg_database`, :mod:`~facecore.gallery.pg_search`, :mod:`~facecore.gallery.pg_records`:
  the PostgreSQL store, its schema/pool/transactions, its SQL search (HNSW past a size), its row helpers;
* :mod:`~facecore.gallery.faiss_hnsw`: the embedded index past its size (HNSW); :mod:`~facecore.gallery.copying`: `gallery copy`;
* :mod:`~facecore.gallery.base`: what every store does the same way (people, names, enrolment, the checks
  of search and identify), written once;
* :mod:`~facecore.gallery.store`: the :class:`Gallery` (SQLite rows, files, the FAISS search, repair);
* :mod:`~facecore.gallery.database`: the SQLite schema, per-thread connections, retried transactions;
* :mod:`~facecore.gallery.index`: stored vectors and the per-model-version FAISS indexes;
* :mod:`~facecore.gallery.files`: content-hashed file names, atomic writes, chip PNGs, stray files;
* :mod:`~facecore.gallery.names`: how names are cleaned and when two names are the same person;
* :mod:`~facecore.gallery.records`: ``GalleryError``, the records handed out, the protocols taken in;
* :mod:`~facecore.gallery.export`: embeddings as a CSV table or an ``.npz``;
* :mod:`~facecore.gallery.importing`: enrolling many photos (a zip, folders, uploads) in one go.

This package imports neither TensorFlow nor dlib: faces and pipelines come in through protocols.
"""

from facecore.gallery.names import clean_name
from facecore.gallery.records import GalleryError, GalleryFace, Person, RepairReport
from facecore.gallery.store import Gallery, default_gallery_dir
from facecore.gallery.stores import STORES, GalleryStore, gallery_url, open_gallery
from facecore.types import Match
from facecore.verification.decisions import UNKNOWN, Identification

__all__ = [
    "UNKNOWN",
    "Gallery",
    "GalleryError",
    "GalleryFace",
    "Identification",
    "Match",
    "GalleryStore",
    "Person",
    "RepairReport",
    "STORES",
    "clean_name",
    "default_gallery_dir",
    "gallery_url",
    "open_gallery",
]
