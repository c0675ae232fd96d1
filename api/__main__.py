"""``python -m api [--host 127.0.0.1] [--port 8000] [--insecure]``: start the API, refusing an open door.

Contract: with no active API key in the gallery (``python -m facecore api-key create ...``) the server
starts only on a loopback address (and says so), unless ``--insecure`` is given; binding to any other
address without a key exits with status 2 and a sentence saying what to do. ``--insecure`` sets
``FACECORE_API_INSECURE=1`` so that :mod:`api.access` answers remote callers too. Every other setting
comes from the environment (docs/api.md). ``uvicorn api.main:app`` still works: without keys, the app
itself answers loopback callers only.

The keys are looked for in the gallery the server will serve: :func:`gallery_keys` opens it with
:func:`facecore.gallery.stores.open_gallery`, which reads ``$FACECORE_GALLERY_URL`` (else
``$FACECORE_GALLERY_DIR``, else ``./gallery``) exactly as :mod:`api.engine` does, so on PostgreSQL the
keys in PostgreSQL count. A gallery that cannot be opened exits with status 2 and a sentence.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from collections.abc import Sequence

from facecore.gallery import GalleryError
from facecore.gallery.keys import has_active_keys
from facecore.gallery.stores import open_gallery


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def gallery_keys(url: str | None = None) -> tuple[str, bool]:
    """Where the served gallery is (password hidden) and whether it holds an active API key; ``url``
    defaults to the environment's gallery, the one :mod:`api.engine` opens."""
    with open_gallery(url) as gallery:
        return gallery.location, has_active_keys(gallery.database)


def refusal(host: str, insecure: bool, keys_exist: bool, location: str = "") -> str | None:
    """Why the server must not start on ``host``, or None (``location``: the gallery, for the message)."""
    if keys_exist or insecure or is_loopback_host(host):
        return None
    where = f" in the gallery at {location}" if location else ""
    return (
        f"No API key exists{where}, so the API will not listen on {host}: anyone who reaches it could enrol, "
        "delete and search faces. Create a key first (python -m facecore api-key create --role admin "
        "--name <name>), bind to 127.0.0.1, or pass --insecure if you really mean it."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--insecure", action="store_true", help="serve every address even with no API key")
    args = parser.parse_args(argv)
    try:
        location, keys_exist = gallery_keys()
    except GalleryError as error:
        print(f"The API cannot start: {error}", file=sys.stderr)
        return 2
    problem = refusal(args.host, args.insecure, keys_exist, location)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    if not keys_exist:
        print(
            f"No API key exists in the gallery at {location}: answering on loopback only." if not args.insecure
            else f"No API key exists in the gallery at {location} and --insecure is set: ANYONE who reaches "
            "this port can use the API.",
            file=sys.stderr,
        )
    if args.insecure:
        os.environ["FACECORE_API_INSECURE"] = "1"
    import uvicorn

    uvicorn.run("api.main:app", host=args.host, port=args.port, workers=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
