"""Stopping the real servers (uvicorn, Streamlit) that tests start as subprocesses."""

from __future__ import annotations

import subprocess


def stop_process(process: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if the process has not exited after ``timeout_s``; always reaped."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
