"""Every API area the app serves: the health probes eagerly, the rest built on first use.

An area's module is imported only when a request first reaches one of its prefixes (see
kiln.server.lazy_routes), so the server's cold start does not grow with the API. Adding an
area: write its module with a `router`, then add one `Area` line here.
"""

from kiln.server.fastapi_compat import skip_pydantic_v1_probe
from kiln.server.lazy_routes import Area

# Before any route is built: route building is where FastAPI would import pydantic.v1.
skip_pydantic_v1_probe()

# Served eagerly: /health must answer the moment the server is up.
EAGER_MODULES: tuple[str, ...] = ("kiln.server.routers.health",)

AREAS: tuple[Area, ...] = (
    Area("kiln.server.routers.tokens", ("/api/2.0/token", "/api/2.0/token-management")),
    Area("kiln.server.routers.scim", ("/api/2.0/preview/scim/v2",)),
    Area("kiln.server.routers.workspace", ("/api/2.0/workspace",)),
    Area("kiln.server.routers.dbfs", ("/api/2.0/dbfs",)),
    Area("kiln.server.routers.files", ("/api/2.0/fs",)),
    Area("kiln.server.routers.secrets", ("/api/2.0/secrets",)),
    Area("kiln.server.routers.clusters", ("/api/2.0/clusters",)),
    Area("kiln.server.routers.permissions", ("/api/2.0/permissions/clusters",)),
    Area("kiln.server.routers.libraries", ("/api/2.0/libraries", "/api/2.0/kiln/libraries")),
    Area("kiln.server.routers.pools", ("/api/2.0/instance-pools",)),
    Area("kiln.server.routers.driver_proxy", ("/driver-proxy", "/driver-proxy-api")),
    Area("kiln.server.routers.execution", ("/api/1.2",)),
    Area("kiln.server.routers.notebook_runs", ("/api/2.0/kiln/notebook-runs",)),
    Area("kiln.server.routers.jobs", ("/api/2.2/jobs",)),
    Area("kiln.server.routers.catalog", ("/api/2.1/unity-catalog",)),
    Area("kiln.server.routers.mlflow", ("/api/2.0/mlflow", "/ajax-api", "/mlflow")),
    Area("kiln.server.routers.serving", ("/api/2.0/serving-endpoints", "/serving-endpoints")),
    Area("kiln.server.routers.feature_store", ("/api/2.0/feature-store",)),
    Area("kiln.server.routers.ui_revisions", ("/api/2.0/kiln/notebook-revisions",)),
    Area("kiln.server.routers.ui_stream", ("/api/2.0/kiln/commands",)),
    Area("kiln.server.routers.ui_tables", ("/api/2.0/kiln/tables",)),
    Area("kiln.server.routers.ui_proxy_grant", ("/api/2.0/kiln/driver-proxy-grants",)),
)

# Alias prefix -> canonical prefix: an area's routes are registered once, under the canonical
# prefix, and the alias is rewritten before routing (see kiln.server.aliases).
ALIASES: dict[str, str] = {
    "/api/2.1/clusters": "/api/2.0/clusters",
    "/api/2.0/scim/v2": "/api/2.0/preview/scim/v2",
    "/api/2.0/jobs": "/api/2.2/jobs",
    "/api/2.1/jobs": "/api/2.2/jobs",
    "/mlflow/ajax-api": "/ajax-api",
    "/mlflow/get-artifact": "/ajax-api/2.0/mlflow/get-artifact",
}

__all__ = ["ALIASES", "AREAS", "EAGER_MODULES"]
