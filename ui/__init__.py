"""Streamlit helpers shared by the dashboard's pages (widgets and drawing only; the work is in facecore)."""
