"""``python -m facecore api-key create|list|revoke``: the API's keys in the gallery database.

``create --role {read,enrol,admin} --name NAME`` prints the secret once, on stdout alone (so a script can
capture it); it is stored only as a SHA-256 (:mod:`facecore.gallery.keys`). ``list`` shows names,
roles, prefixes and dates, never secrets. ``revoke NAME_OR_ID``.

``--gallery`` (here and in :mod:`facecore.cli_calibration`'s commands) takes a gallery URL
(``sqlite:///folder``, ``postgresql://user@host/db``) or a folder (the SQLite gallery in it); without
it, the commands open what :func:`facecore.gallery.stores.open_gallery` opens from the environment
(``$FACECORE_GALLERY_URL``, else ``$FACECORE_GALLERY_DIR``, else ``./gallery``), the gallery the API
serves. :func:`open_cli_gallery` is the one place that turns the option into a gallery. A gallery
that cannot be opened exits with status 2 and one sentence on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from facecore.gallery.keys import ROLES

GALLERY_HELP = (
    "the gallery: a URL (sqlite:///folder, postgresql://user@host/db) or a folder; default: "
    "$FACECORE_GALLERY_URL, else $FACECORE_GALLERY_DIR, else ./gallery (what the API serves)"
)


def gallery_url_of(value: str | None) -> str:
    """The gallery URL ``--gallery value`` names: a URL as given, a folder as ``sqlite://`` + its absolute
    path, None as :func:`facecore.gallery.stores.gallery_url` (the environment's, the API's)."""
    from facecore.gallery.stores import gallery_url

    if value is None:
        return gallery_url()
    if "://" in value:
        return value
    return f"sqlite://{Path(value).expanduser().resolve()}"


def open_cli_gallery(value: str | None) -> Any:
    """The gallery ``--gallery value`` names, opened by :func:`facecore.gallery.stores.open_gallery`."""
    from facecore.gallery.stores import open_gallery

    return open_gallery(gallery_url_of(value))


def add_commands(commands: argparse._SubParsersAction) -> None:
    keys = commands.add_parser("api-key", help="create, list or revoke the HTTP API's keys")
    keys.add_argument("--gallery", default=None, help=GALLERY_HELP)
    actions = keys.add_subparsers(dest="key_command", required=True)
    create = actions.add_parser("create", help="a new key (its secret is shown once)")
    create.add_argument(
        "--role", choices=ROLES, required=True, help="read: verify, identify, embeddings, listing; "
        "enrol: also add and change people and faces; admin: also delete"
    )
    create.add_argument("--name", required=True, help="who or what uses it, e.g. kiosk")
    actions.add_parser("list", help="every key: name, role, prefix, created, revoked")
    revoke = actions.add_parser("revoke", help="revoke an active key by name or id")
    revoke.add_argument("key", help="the key's name or id")


def _when(stamp: float | None) -> str:
    return "-" if stamp is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(stamp))


def run(args: argparse.Namespace) -> int:
    from facecore.gallery import GalleryError
    from facecore.gallery.keys import create_key, list_keys, revoke_key

    try:
        gallery = open_cli_gallery(args.gallery)
    except GalleryError as error:
        print(error, file=sys.stderr)
        return 2
    with gallery:
        try:
            if args.key_command == "create":
                key, secret = create_key(gallery.database, args.name, args.role)
                print(secret)
                print(
                    f"Created the {key.role} key '{key.name}' for the gallery at {gallery.location}. This is the "
                    "only time it is shown: store it now.",
                    file=sys.stderr,
                )
            elif args.key_command == "list":
                print(f"{'id':>4}  {'name':<24} {'role':<6} {'prefix':<10} {'created (UTC)':<17} revoked")
                for key in list_keys(gallery.database):
                    print(
                        f"{key.id:>4}  {key.name:<24} {key.role:<6} {key.prefix:<10} "
                        f"{_when(key.created):<17} {_when(key.revoked)}"
                    )
            else:
                key = revoke_key(gallery.database, args.key)
                print(f"Revoked the {key.role} key '{key.name}'.")
        except GalleryError as error:
            print(error, file=sys.stderr)
            return 2
    return 0
