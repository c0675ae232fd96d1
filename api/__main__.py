"""``python -m api [--host 127.0.0.1] [--port 8000] [--insecure]``: start the API, refusing an open door.

Contract: with no active API key in the gallery (``python -m facecore api-key create ...``) the server
starts only on a loopback address (and says so), unless ``--insecure`` is given; binding to any other
address without a key exits with status 2 and a sentence saying what to do. ``--insecure`` sets
``FACECORE_API_INSECURE=1`` so that :mod:`api.access` answers remote callers too. Every other setting
comes from the environment (docs/api.md). ``uvicorn api.main:app`` still works: without keys, the app
itself answers loopback callers only.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from collections.abc import Sequence

from facecore.gallery import Gallery, default_gallery_dir
from facecore.gallery.keys import has_active_keys


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refusal(host: str, insecure: bool, keys_exist: bool) -> str | None:
    """Why the server must not start on ``host``, or None."""
    if keys_exist or insecure or is_loopback_host(host):
        return None
    return (
        f"No API key exists, so the API will not listen on {host}: anyone who reaches it could enrol, "
        "delete and search faces. Create a key first (python -m facecore api-key create --role admin "
        "--name <name>), bind to 127.0.0.1, or pass --insecure if you really mean it."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--insecure", action="store_true", help="serve every address even with no API key")
    args = parser.parse_args(argv)
    with Gallery(default_gallery_dir()) as gallery:
        keys_exist = has_active_keys(gallery.database)
    problem = refusal(args.host, args.insecure, keys_exist)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    if not keys_exist:
        print(
            "No API key exists: answering on loopback only." if not args.insecure
            else "No API key exists and --insecure is set: ANYONE who reaches this port can use the API.",
            file=sys.stderr,
        )
    if args.insecure:
        os.environ["FACECORE_API_INSECURE"] = "1"
    import uvicorn

    uvicorn.run("api.main:app", host=args.host, port=args.port, workers=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
