import streamlit as st

st.title("lfw_benchmark")
