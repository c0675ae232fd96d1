"""Face Verification Lab: entry point (the full dashboard is built on facecore in later work)."""

import streamlit as st

import facecore

st.set_page_config(page_title="Face Verification Lab", page_icon=":material/face:", layout="wide")
st.title("Face Verification Lab")
st.caption(f"facecore {facecore.__version__}")
st.write(
    "See how face verification works: detect, align, embed and compare faces, "
    "and tune the decision threshold on the LFW benchmark."
)
