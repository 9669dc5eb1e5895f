"""The HTTP edge: thin routes over the domain services, Databricks' paths and error bodies."""

from kiln.server.app import create_app

__all__ = ["create_app"]
