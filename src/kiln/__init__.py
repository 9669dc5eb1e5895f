"""Kiln: a self-hosted lakehouse workspace that speaks the Databricks REST API."""

__version__ = "0.1.0"

__all__ = ["__version__"]
