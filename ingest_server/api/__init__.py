"""REST API of the ingest server (FastAPI): ``create_app(settings)``."""

from ingest_server.api.main import create_app

__all__ = ["create_app"]
