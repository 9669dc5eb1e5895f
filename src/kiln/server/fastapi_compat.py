"""Keep FastAPI from importing `pydantic.v1` (~0.1 s of every cold start) to ask about it.

FastAPI checks every route annotation, and every object it encodes, for a pydantic v1 model by
importing `pydantic.v1` first. Kiln defines no v1 models and nothing it loads imports
`pydantic.v1`, so while that module is not loaded no object can be a v1 model: answer False
without importing it, and defer to FastAPI's own check once something has loaded it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

__all__ = ["skip_pydantic_v1_probe"]


def _unless_loaded(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def probe(value: Any) -> bool:
        return "pydantic.v1" in sys.modules and check(value)

    return probe


def skip_pydantic_v1_probe() -> None:
    """Patch FastAPI's v1 probes (idempotent; a FastAPI without them is left alone)."""
    try:
        from fastapi import encoders
        from fastapi._compat import shared
    except ImportError:  # pragma: no cover - a FastAPI without the compat layer
        return
    # `encoders` imported the instance probe by name, so it holds its own reference.
    for module, name in (
        (shared, "is_pydantic_v1_model_class"),
        (shared, "is_pydantic_v1_model_instance"),
        (encoders, "is_pydantic_v1_model_instance"),
    ):
        original = getattr(module, name, None)
        if original is not None and not getattr(original, "_kiln_probe", False):
            probe = _unless_loaded(original)
            probe._kiln_probe = True  # type: ignore[attr-defined]
            setattr(module, name, probe)
