"""Requests per second of the HTTP API's /verify and /identify, over loopback, on this machine.

Starts ``uvicorn api.main:app`` in its own process over a temporary gallery, enrols one photo of each
faces_small person through the API, then this process sends requests from a few client threads for a
fixed time per endpoint and reports requests/s and latency percentiles. The photos are ``--photos``
(``faces_small/``, ``faces_group/``), by default the demo pack in ``samples/``.

    python bench/api_throughput.py --seconds 20 --concurrency 4
    python bench/api_throughput.py --seconds 0.5 --concurrency 1        # a quick run
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import _data
import _repo_path  # noqa: F401
import httpx
import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Run:
    endpoint: str
    seconds: float
    latencies: list[float]
    errors: int

    def row(self, concurrency: int) -> dict[str, object]:
        ms = np.array(self.latencies) * 1000
        return {
            "endpoint": self.endpoint,
            "clients": concurrency,
            "requests": len(ms),
            "errors": self.errors,
            "req/s": round(len(ms) / self.seconds, 2),
            "p50 ms": round(float(np.percentile(ms, 50)), 0) if len(ms) else None,
            "p95 ms": round(float(np.percentile(ms, 95)), 0) if len(ms) else None,
        }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(gallery: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "FACECORE_GALLERY_DIR": str(gallery)}
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(
        [*command, "--log-level", "warning"], cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL
    )


def wait_for_health(base: str, server: subprocess.Popen, patience_s: float = 300) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < patience_s:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return time.perf_counter() - start
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise SystemExit("the server never answered /health")


def enrol_everyone(client: httpx.Client, photos: Path) -> int:
    enrolled = 0
    for folder in sorted(p for p in (photos / "faces_small").iterdir() if p.is_dir()):
        person = client.post("/people", json={"name": folder.name}).json()
        photo = sorted(folder.glob("*.jpg"))[0]
        response = client.post(
            f"/people/{person['id']}/faces", files={"image": (photo.name, photo.read_bytes())}
        )
        enrolled += response.status_code == 201
    return enrolled


def hammer(base: str, send: Callable[[httpx.Client], httpx.Response], seconds: float, clients: int) -> Run:
    """``clients`` threads, each with its own connection, sending until ``seconds`` have passed."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=120) as client:
            while time.perf_counter() < stop_at:
                start = time.perf_counter()
                ok = send(client).status_code == 200
                took = time.perf_counter() - start
                with lock:
                    if ok:
                        latencies.append(took)
                    else:
                        errors[0] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Run("", time.perf_counter() - started, latencies, errors[0])


def markdown_table(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="load time per endpoint")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads")
    parser.add_argument("--photos", type=Path, default=None, help=_data.PHOTOS_HELP)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    photos = _data.photos_dir(args.photos)

    obama = sorted((photos / "faces_small" / "obama").glob("*.jpg"))
    pair = {"image_a": ("a.jpg", obama[0].read_bytes()), "image_b": ("b.jpg", obama[1].read_bytes())}
    group = {"image": ("group.jpg", (photos / "faces_group" / "kit_with_rose.jpg").read_bytes())}
    endpoints = {
        "POST /verify (two 0.7-1 MP portraits)": lambda c: c.post("/verify", files=pair),
        "POST /identify (501x700 photo, 2 faces, k=5)": lambda c: c.post("/identify", files=group),
    }

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(Path(tmp) / "gallery", port)
        try:
            startup = wait_for_health(base, server)
            with httpx.Client(base_url=base, timeout=120) as client:
                enrolled = enrol_everyone(client, photos)
                for send in endpoints.values():  # warm up: first calls build TF graphs and the index
                    send(client).raise_for_status()
            rows = []
            for name, send in endpoints.items():
                run = hammer(base, send, args.seconds, args.concurrency)
                run.endpoint = name
                rows.append(run.row(args.concurrency))
        finally:
            server.terminate()
            server.wait(timeout=30)

    print(f"server startup (models loaded, /health answers): {startup:.1f} s; gallery: {enrolled} faces")
    print(f"cores: {os.cpu_count()}, load average before: {load_before:.2f}")
    print(markdown_table(pd.DataFrame(rows)))


if __name__ == "__main__":
    main()
