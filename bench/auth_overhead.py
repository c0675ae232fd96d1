"""What API keys and the audit log add to a request: p50/p95 side by side, in one run.

    python bench/auth_overhead.py [--verifies 30] [--lists 300] [--photos samples]
    python bench/auth_overhead.py --verifies 2 --lists 10                      # a quick run

Two apps in one process over the same fresh gallery and the same pipeline (HOG, dlib-keras):

* **with**: the API as shipped, called with a ``read`` key: every request looks the key up by its
  SHA-256, checks the role and the token bucket (:mod:`api.access`), and every decision writes one
  audit row (:mod:`api.audit`, one SQLite transaction);
* **without**: the same app without the ``Authenticate`` middleware, with FastAPI's
  ``dependency_overrides`` replacing ``authorize`` by a fixed caller and the audit dependency by one
  that writes nothing.

Requests alternate between the two apps (with, without, with, ...) so that load on the machine hits
both alike. It times ``POST /verify`` (two sample photos; the models run) and ``GET /people`` (no
model, no audit: the key check alone, in absolute terms), then one audit write alone, and prints p50/p95
of each; auth + audit as a share of a verify is (list overhead + audit write) / verify p50 without,
because the verify difference itself is within the models' noise. The target (issue 16) is under 5%.

The two photos are the first two of ``faces_small/obama`` in ``--photos``, by default the demo pack in
``samples/``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import _data
import _repo_path  # noqa: F401
import numpy as np
from fastapi.testclient import TestClient

from api.access import ADMIN, Authenticate, Caller, authorize
from api.audit import Auditor
from api.config import ApiConfig
from api.main import create_app
from facecore.gallery import Gallery
from facecore.gallery.audit import AuditEntry, record
from facecore.gallery.keys import create_key
from facecore.pipeline import build_pipeline


class NoAudit:
    def record(self, *args: object, **kwargs: object) -> None:
        pass


def percentiles(samples: list[float]) -> dict[str, float]:
    values = np.asarray(samples) * 1000
    return {"p50_ms": round(float(np.percentile(values, 50)), 3), "p95_ms": round(float(np.percentile(values, 95)), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--verifies", type=int, default=30)
    parser.add_argument("--lists", type=int, default=300)
    parser.add_argument("--photos", type=Path, default=None, help=_data.PHOTOS_HELP)
    args = parser.parse_args()

    photos = sorted((_data.photos_dir(args.photos) / "faces_small" / "obama").glob("*.jpg"))[:2]
    files = {"image_a": ("a.jpg", photos[0].read_bytes(), "image/jpeg"), "image_b": ("b.jpg", photos[1].read_bytes(), "image/jpeg")}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "gallery"
        with Gallery(root) as gallery:
            _, secret = create_key(gallery.database, "bench", "read")
        config = ApiConfig(gallery_root=root, rate_per_minute=0)
        pipeline = build_pipeline(config.pipeline)
        with_app = create_app(config, pipeline)
        without_app = create_app(config, pipeline)
        without_app.user_middleware = [m for m in without_app.user_middleware if m.cls is not Authenticate]
        without_app.dependency_overrides[authorize] = lambda: Caller("bench", ADMIN)
        without_app.dependency_overrides[Auditor] = NoAudit
        headers = {"Authorization": f"Bearer {secret}"}
        timings: dict[str, list[float]] = {k: [] for k in ("verify_with", "verify_without", "list_with", "list_without")}
        with TestClient(with_app) as with_client, TestClient(without_app) as without_client:
            for client, extra in ((with_client, headers), (without_client, {})):  # warm up both
                assert client.post("/verify", files=files, headers=extra).status_code == 200
            for kind, count, call in (
                ("verify", args.verifies, lambda c, h: c.post("/verify", files=files, headers=h)),
                ("list", args.lists, lambda c, h: c.get("/people", headers=h)),
            ):
                for _ in range(count):
                    for name, client, extra in (("with", with_client, headers), ("without", without_client, {})):
                        start = time.perf_counter()
                        response = call(client, extra)
                        timings[f"{kind}_{name}"].append(time.perf_counter() - start)
                        assert response.status_code == 200, response.text
        with Gallery(root) as gallery:
            with gallery.database.snapshot() as db:
                rows = db.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]
            entry = AuditEntry("bench", "POST /verify", {"same_person": True, "distance": 0.4}, threshold=0.6)
            for _ in range(args.lists):  # one audit write alone, as a verify makes it
                start = time.perf_counter()
                record(gallery.database, entry)
                timings.setdefault("audit_write", []).append(time.perf_counter() - start)

    result = {name: percentiles(samples) for name, samples in timings.items()}
    overhead = {
        p: round(result["verify_with"][p] - result["verify_without"][p], 3) for p in ("p50_ms", "p95_ms")
    }
    list_overhead = {p: round(result["list_with"][p] - result["list_without"][p], 3) for p in ("p50_ms", "p95_ms")}
    result.update(
        verify_overhead=overhead,
        list_overhead=list_overhead,
        list_overhead_share_of_verify_p50=round(list_overhead["p50_ms"] / result["verify_without"]["p50_ms"], 6),
        auth_plus_audit_share_of_verify_p50=round(
            (list_overhead["p50_ms"] + result["audit_write"]["p50_ms"]) / result["verify_without"]["p50_ms"], 6
        ),
        verify_overhead_share_p50=round(overhead["p50_ms"] / result["verify_without"]["p50_ms"], 4),
        audit_rows=int(rows),
        requests={"verifies": args.verifies, "lists": args.lists},
    )
    print(
        f"verify p50 {result['verify_with']['p50_ms']:.1f} ms with keys+audit vs {result['verify_without']['p50_ms']:.1f} "
        f"without; GET /people p50 {result['list_with']['p50_ms']:.2f} vs {result['list_without']['p50_ms']:.2f} ms "
        f"; one audit write p50 {result['audit_write']['p50_ms']:.2f} ms; auth + audit = "
        f"{100 * result['auth_plus_audit_share_of_verify_p50']:.4f}% of a verify's p50"
    )
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
