"""Face Verification Lab: the Streamlit entry point (``streamlit run app.py``).

Pages are thin: widgets and layout calling ``facecore``. Add a page by adding its file to
``app_pages/`` and one ``st.Page`` to ``PAGES``; the sidebar settings (detector, metric, flip TTA,
threshold) are shared by all of them.

The folder is deliberately not called ``pages/``: Streamlit treats a ``pages/`` folder beside the
entry point as an old-style (v1) multipage app, which runs a page file without this script (no
sidebar, no page config) on a server's first run, and on every run after the first under AppTest.
"""

import streamlit as st

from ui.settings import settings_sidebar
from ui.streamlit_fixes import keep_keras_state, keep_replies_across_reruns

keep_replies_across_reruns()  # two photos chosen at once could hang Verify (ui/streamlit_fixes.py)
keep_keras_state()  # Streamlit would clear Keras after every run: each embedding traced again
st.set_page_config(page_title="Face Verification Lab", page_icon=":material/face:", layout="wide")

PAGES = {
    "Lab": [
        st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("app_pages/verify.py", title="Verify", icon=":material/compare:"),
        st.Page("app_pages/gallery.py", title="Gallery", icon=":material/photo_library:"),
        st.Page("app_pages/identify.py", title="Identify", icon=":material/person_search:"),
        st.Page("app_pages/audit_log.py", title="Audit log", icon=":material/history:"),
    ],
    "Classroom": [
        st.Page("app_pages/triplet_classroom.py", title="Triplet loss", icon=":material/school:"),
        st.Page("app_pages/train_your_own.py", title="Train your own", icon=":material/model_training:"),
    ],
    "Analysis": [
        st.Page("app_pages/distance_matrix.py", title="Distance matrix", icon=":material/grid_on:"),
        st.Page("app_pages/threshold_lab.py", title="Threshold lab", icon=":material/tune:"),
        st.Page("app_pages/own_data.py", title="Your data", icon=":material/fact_check:"),
        st.Page("app_pages/embedding_space.py", title="Embedding space", icon=":material/scatter_plot:"),
        st.Page("app_pages/lfw_benchmark.py", title="LFW benchmark", icon=":material/leaderboard:"),
    ],
}

page = st.navigation(PAGES)
settings_sidebar()
page.run()
