"""One router per resource; :data:`ROUTERS` is the order ``api.main.create_app`` includes them in.

Routes decide "same person" only through ``facecore.verification`` (``verify``, ``verify_against``,
``Gallery.identify``); no route compares a distance with a threshold itself.
"""

from api.routes import batch, faces, gallery_import, operating_points, people, recognition, service

# gallery_import before people: its fixed path /people/import must not be read as /people/{person_id}.
ROUTERS = (
    service.router, gallery_import.router, people.router, faces.router, batch.router, recognition.router,
    operating_points.router,
)

__all__ = ["ROUTERS"]
