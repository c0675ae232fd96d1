"""Work-arounds for Streamlit bugs the dashboard hits, applied once per server by ``app.py``.

:func:`keep_replies_across_reruns` fixes the Verify hang of two photos chosen at once (Streamlit 1.67;
docs/benchmarks.md, "Dashboard"). Choosing a photo in an ``st.file_uploader`` is a round trip: the
browser asks the server for an upload URL (a ``file_urls_request`` message), waits for the reply
(``file_urls_response``), uploads the file, and only then sends the new widget value that reruns the
page. The server puts its reply in the session's outgoing queue, which is sent to the browser a few
milliseconds later. When a script run starts, Streamlit clears that queue of the previous run's
output, keeping only run lifecycle messages (``ForwardMsgQueue.clear(retain_lifecycle_msgs=True)``),
and the upload URL reply is not among them. So when the second photo's URL request arrives just
after the first photo's rerun request (both photos chosen at once), the run the first photo starts
can throw the second photo's reply away before it is sent. The browser waits for it forever: the
second uploader shows no file, nothing is sent, and the page keeps saying "Choose two photos".

The fix keeps the replies to the browser's own requests (upload URLs, backend operations, heartbeat
acknowledgements: none of them is a script run's output) when the queue is cleared at the start of
a run. It changes nothing else: script output is cleared as before.

:func:`keep_keras_state` stops Streamlit from calling ``keras.backend.clear_session()`` after every
script run (``script_runner._clean_problem_modules``, meant for scripts that build a new Keras model
each run). The lab's models are built once per process and shared by every session
(``ui.resources``); clearing Keras's global state after each run threw away their traced predict
functions and ran a full garbage collection, so each embedding after a rerun was traced again:
0.4 s for one ArcFace chip instead of 19 ms, plus 0.3 s of ``gc.collect`` per run, on every page.
The other half of that clean-up closes matplotlib figures, which the lab never draws (Plotly only).

Contract: both fixes are idempotent and cheap, so ``app.py`` calls them on every run; importing this
module changes nothing.
"""

from __future__ import annotations

import functools

from streamlit.runtime.forward_msg_queue import ForwardMsgQueue
from streamlit.runtime.scriptrunner import script_runner

#: Messages that answer a request of the browser; the browser waits for each of them by its id.
REPLY_TYPES = frozenset({"file_urls_response", "backend_operation_response", "heartbeat_ack"})

_MARK = "_facecore_keeps_replies"


def _keeping_replies(clear):
    @functools.wraps(clear)
    def clear_keeping_replies(self, retain_lifecycle_msgs: bool = False, fragment_ids_this_run=None) -> None:
        replies = [m for m in self._queue if m.WhichOneof("type") in REPLY_TYPES] if retain_lifecycle_msgs else []
        clear(self, retain_lifecycle_msgs=retain_lifecycle_msgs, fragment_ids_this_run=fragment_ids_this_run)
        kept = {id(m) for m in self._queue}  # a fragment run's clear keeps non-delta messages itself
        self._queue.extend(m for m in replies if id(m) not in kept)

    setattr(clear_keeping_replies, _MARK, True)
    return clear_keeping_replies


def replies_kept() -> bool:
    """Whether :func:`keep_replies_across_reruns` is in effect in this process."""
    return getattr(ForwardMsgQueue.clear, _MARK, False)


def keep_replies_across_reruns() -> None:
    """Make the start of a script run keep queued replies to the browser's requests (see the module doc)."""
    if not replies_kept():
        ForwardMsgQueue.clear = _keeping_replies(ForwardMsgQueue.clear)


#: Streamlit's own clean-up, as it was when this module was first imported.
STREAMLIT_CLEAN_UP = script_runner._clean_problem_modules


def _no_clean_up() -> None:
    """Streamlit's clean-up after a run, less the Keras part: nothing is left (the lab draws no matplotlib)."""


setattr(_no_clean_up, _MARK, True)


def keras_state_kept() -> bool:
    """Whether :func:`keep_keras_state` is in effect in this process."""
    return getattr(script_runner._clean_problem_modules, _MARK, False)


def keep_keras_state() -> None:
    """Keep Keras's global state (the shared models' traced functions) across script runs (module doc)."""
    if not keras_state_kept():
        script_runner._clean_problem_modules = _no_clean_up
