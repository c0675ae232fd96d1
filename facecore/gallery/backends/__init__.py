"""The gallery stores, one module each, registered in :data:`facecore.gallery.stores.STORES` by URL scheme.

A store class here only opens its gallery; the gallery itself lives in its own module
(:mod:`facecore.gallery.store` for SQLite, :mod:`facecore.gallery.postgres` for PostgreSQL), imported
when a gallery is opened, so listing the stores loads no database driver.
"""
