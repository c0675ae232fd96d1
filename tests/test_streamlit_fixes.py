"""The work-arounds of ui/streamlit_fixes.py: the Verify hang, on Streamlit's real outgoing message queue,
and Keras's state kept across script runs, with Streamlit's real clean-up function.

When a script run starts, Streamlit clears the session's outgoing queue with
``clear(retain_lifecycle_msgs=True)`` (``AppSession``, on ``SCRIPT_STARTED``). These tests make that
exact call on a real ``ForwardMsgQueue`` holding real protobuf messages: an upload-URL reply queued
just before it must survive, the previous run's output must not. The browser-level proof (100 runs of
the flow that hung) is ``bench/browser_stress.py``; docs/benchmarks.md has the figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.runtime.forward_msg_queue import ForwardMsgQueue
from streamlit.runtime.scriptrunner import script_runner
from streamlit.testing.v1 import AppTest

from ui.streamlit_fixes import (
    STREAMLIT_CLEAN_UP,
    keep_keras_state,
    keep_replies_across_reruns,
    keras_state_kept,
    replies_kept,
)

APP = Path(__file__).resolve().parents[1] / "app.py"


def _upload_url_reply(request_id: str) -> ForwardMsg:
    msg = ForwardMsg()
    msg.file_urls_response.response_id = request_id
    urls = msg.file_urls_response.file_urls.add()
    urls.file_id = "file-1"
    urls.upload_url = f"/_stcore/upload_file/session/{request_id}"
    return msg


def _script_output(text: str, index: int) -> ForwardMsg:
    msg = ForwardMsg()
    msg.metadata.delta_path[:] = [0, index]
    msg.delta.new_element.markdown.body = text
    return msg


def _lifecycle() -> ForwardMsg:
    msg = ForwardMsg()
    msg.session_status_changed.script_is_running = True
    return msg


def _heartbeat_ack() -> ForwardMsg:
    msg = ForwardMsg()
    msg.heartbeat_ack = True
    return msg


def _queue_at_run_start(fragment_ids: list[str] | None = None) -> list[ForwardMsg]:
    """What is left to send after a run starts, with a reply queued between two bits of output."""
    queue = ForwardMsgQueue()
    queue.enqueue(_script_output("previous run", 0))
    queue.enqueue(_lifecycle())
    queue.enqueue(_upload_url_reply("photo-b"))
    queue.enqueue(_heartbeat_ack())
    queue.enqueue(_script_output("more of the previous run", 1))
    queue.clear(retain_lifecycle_msgs=True, fragment_ids_this_run=fragment_ids)
    return queue.flush()


def test_unpatched_streamlit_drops_the_upload_url_reply_when_a_run_starts() -> None:
    """The bug itself. If this fails, Streamlit keeps the reply now: delete ui/streamlit_fixes.py."""
    original = getattr(ForwardMsgQueue.clear, "__wrapped__", ForwardMsgQueue.clear)
    queue = ForwardMsgQueue()
    queue.enqueue(_upload_url_reply("photo-b"))
    original(queue, retain_lifecycle_msgs=True)
    assert [m.WhichOneof("type") for m in queue.flush()] == []


def test_a_run_start_keeps_the_replies_and_clears_the_previous_output() -> None:
    keep_replies_across_reruns()
    left = _queue_at_run_start()
    assert [m.WhichOneof("type") for m in left] == ["session_status_changed", "file_urls_response", "heartbeat_ack"]
    reply = left[1].file_urls_response
    assert reply.response_id == "photo-b"
    assert reply.file_urls[0].upload_url == "/_stcore/upload_file/session/photo-b"


def test_a_fragment_run_keeps_each_reply_once() -> None:
    """A fragment run's clear keeps non-delta messages itself; the fix must not send them twice."""
    keep_replies_across_reruns()
    left = _queue_at_run_start(fragment_ids=["some-fragment"])
    kinds = [m.WhichOneof("type") for m in left]
    assert kinds.count("file_urls_response") == 1
    assert kinds.count("heartbeat_ack") == 1


def test_sending_still_empties_the_queue() -> None:
    keep_replies_across_reruns()
    queue = ForwardMsgQueue()
    queue.enqueue(_upload_url_reply("photo-a"))
    queue.enqueue(_script_output("output", 0))
    assert [m.WhichOneof("type") for m in queue.flush()] == ["file_urls_response", "delta"]
    assert queue.flush() == []


def test_applying_it_twice_wraps_once() -> None:
    keep_replies_across_reruns()
    first = ForwardMsgQueue.clear
    keep_replies_across_reruns()
    assert ForwardMsgQueue.clear is first
    assert not hasattr(first.__wrapped__, "__wrapped__")


def test_the_app_applies_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``streamlit run app.py`` turns the fix on in its first run (the home page loads no model)."""
    monkeypatch.setenv("FACECORE_GALLERY_DIR", str(tmp_path / "gallery"))
    original = getattr(ForwardMsgQueue.clear, "__wrapped__", ForwardMsgQueue.clear)
    monkeypatch.setattr(ForwardMsgQueue, "clear", original)
    assert not replies_kept()
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    assert not at.exception, at.exception
    assert replies_kept()


# ----------------------------------------------------------------------------- Keras state


def _next_uid() -> int:
    """Keras's global name counter: it counts up, and ``clear_session()`` resets it to 1."""
    import keras

    return keras.backend.get_uid("facecore_probe")


def test_streamlit_clears_keras_after_each_run() -> None:
    """The bug itself. If this fails, Streamlit leaves Keras alone now: drop keep_keras_state."""
    _next_uid()
    assert _next_uid() >= 2
    STREAMLIT_CLEAN_UP()
    assert _next_uid() == 1


def test_kept_keras_state_survives_the_clean_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(script_runner, "_clean_problem_modules", STREAMLIT_CLEAN_UP)
    keep_keras_state()
    keep_keras_state()  # idempotent
    assert keras_state_kept()
    before = _next_uid()
    script_runner._clean_problem_modules()  # what the script runner calls after every run
    assert _next_uid() == before + 1


def test_the_app_keeps_keras_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FACECORE_GALLERY_DIR", str(tmp_path / "gallery"))
    monkeypatch.setattr(script_runner, "_clean_problem_modules", STREAMLIT_CLEAN_UP)
    assert not keras_state_kept()
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    assert not at.exception, at.exception
    assert keras_state_kept()
