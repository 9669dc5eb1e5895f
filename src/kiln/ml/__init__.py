"""The ML lifecycle: MLflow tracking and registry, model serving, feature store."""

__all__: list[str] = []
