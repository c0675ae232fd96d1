"""HTTP API over facecore and the gallery: ``uvicorn api.main:app`` (see docs/api.md)."""
