"""The web workspace's built single-page app, served at the server's root.

The app (sources in `web/`, built by `npm run build` into `dist/` here) talks to Kiln only
through the public REST API with the user's token, so its files are public: `/`, the hashed
`/assets/...` (cached for a year: their names change with their content) and the app's client
routes (`/workspace/...`, `/jobs/...`: each answers index.html, which routes in the browser).
Every `/api/...` path still needs a token. Without a build the same paths answer a page saying
how to build it; the API works either way.
"""

from kiln.server.webui.static import PUBLIC_PREFIXES, PUBLIC_ROOT, WebUiRoute, dist_dir, is_public

__all__ = ["PUBLIC_PREFIXES", "PUBLIC_ROOT", "WebUiRoute", "dist_dir", "is_public"]
