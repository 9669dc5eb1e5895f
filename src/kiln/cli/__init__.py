"""The `kiln` command line."""

__all__: list[str] = []
