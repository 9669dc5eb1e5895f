"""Compute backends behind one small interface (`base.ClusterBackend`), imported lazily by name
from `base.BACKENDS`; `local` runs a cluster's processes on this host."""

from kiln.compute.backends.base import BACKENDS, ClusterBackend, load_backend

__all__ = ["BACKENDS", "ClusterBackend", "load_backend"]
