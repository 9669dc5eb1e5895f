import { lazy, Suspense, useEffect, useState } from "react";
import { clearToken, errorMessage, get, getToken, onConnection, onUnauthorized, setToken } from "./api";
import { Link } from "./components";
import { navigate, usePath } from "./router";
import { WorkspacePage } from "./Workspace";

// Heavier pages load on first visit, so the workspace page paints fast.
const NotebookPage = lazy(() => import("./Notebook"));
const ComputePage = lazy(() => import("./Compute"));
const JobsPage = lazy(() => import("./Jobs"));
const SettingsPage = lazy(() => import("./Settings"));
const DataPage = lazy(() => import("./Data"));
const MlPage = lazy(() => import("./Ml"));

export interface Me {
  userName: string;
  displayName?: string;
}

function Login(props: { onSignedIn: (me: Me) => void }) {
  const [token, setValue] = useState("");
  const [error, setError] = useState("");
  return (
    <div className="login">
      <h1>Kiln</h1>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setToken(token.trim());
          try {
            const me = await get<Me>("/api/2.0/preview/scim/v2/Me");
            props.onSignedIn(me);
          } catch (err) {
            clearToken();
            setError(errorMessage(err));
          }
        }}
      >
        <label>
          Personal access token
          <input
            type="password"
            name="token"
            autoComplete="off"
            value={token}
            onChange={(e) => setValue(e.target.value)}
            autoFocus
          />
        </label>
        <button type="submit">Sign in</button>
        {error && (
          <div className="error" role="alert">
            {error}
          </div>
        )}
      </form>
    </div>
  );
}

function Reconnecting() {
  const [down, setDown] = useState(false);
  useEffect(() => onConnection((online) => setDown(!online)), []);
  if (!down) return null;
  return (
    <div className="reconnecting" data-testid="reconnecting">
      Reconnecting… your edits are kept in this browser.
    </div>
  );
}

export function App() {
  const path = usePath();
  const [me, setMe] = useState<Me | null>(null);
  const [checked, setChecked] = useState(false);

  useEffect(() => {
    onUnauthorized(() => {
      clearToken();
      setMe(null);
    });
    if (!getToken()) {
      setChecked(true);
      return;
    }
    get<Me>("/api/2.0/preview/scim/v2/Me").then(
      (m) => (setMe(m), setChecked(true)),
      () => (clearToken(), setChecked(true)),
    );
  }, []);

  if (!checked) return <div className="boot">Kiln</div>;
  if (!me) {
    return (
      <Login
        onSignedIn={(m) => {
          setMe(m);
          if (path === "/" || path.startsWith("/login")) navigate(homeOf(m), true);
        }}
      />
    );
  }
  if (path === "/" || path.startsWith("/login")) {
    setTimeout(() => navigate(homeOf(me), true));
  }
  const section = path.split("/")[1] || "workspace";
  return (
    <div className="shell">
      <nav className="sidebar">
        <div className="brand">Kiln</div>
        <Link to={homeOf(me)} className={section === "workspace" || section === "notebook" ? "active" : ""}>
          Workspace
        </Link>
        <Link to="/compute" className={section === "compute" ? "active" : ""}>
          Compute
        </Link>
        <Link to="/jobs" className={section === "jobs" ? "active" : ""}>
          Jobs
        </Link>
        <Link to="/data" className={section === "data" ? "active" : ""}>
          Data
        </Link>
        <Link to="/ml" className={section === "ml" ? "active" : ""}>
          ML
        </Link>
        <Link to="/settings" className={section === "settings" ? "active" : ""}>
          Settings
        </Link>
        <div className="me">
          <span data-testid="current-user">{me.userName}</span>
          <button
            className="link"
            onClick={() => {
              clearToken();
              setMe(null);
              navigate("/login");
            }}
          >
            Log out
          </button>
        </div>
      </nav>
      <main>
        <Reconnecting />
        <Suspense fallback={<div className="loading">Loading…</div>}>
          <Page path={path} me={me} />
        </Suspense>
      </main>
    </div>
  );
}

export function homeOf(me: Me): string {
  return `/workspace/Users/${encodeURIComponent(me.userName)}`;
}

function Page(props: { path: string; me: Me }) {
  const { path, me } = props;
  if (path.startsWith("/notebook/")) return <NotebookPage path={path.slice("/notebook".length)} />;
  if (path.startsWith("/compute")) return <ComputePage path={path} />;
  if (path.startsWith("/jobs")) return <JobsPage path={path} me={me} />;
  if (path.startsWith("/settings")) return <SettingsPage />;
  if (path.startsWith("/data")) return <DataPage path={path} />;
  if (path.startsWith("/ml")) return <MlPage />;
  const rest = path.startsWith("/workspace") ? path.slice("/workspace".length) : "";
  return <WorkspacePage path={rest || `/Users/${me.userName}`} />;
}
