import { useState } from "react";
import { get, post } from "./api";
import { ErrorBox, formatTime, Link, StateBadge, useInterval, useLoad } from "./components";
import { navigate } from "./router";

const STARTING = ["PENDING", "RESTARTING", "RESIZING", "TERMINATING"];

export default function ComputePage(props: { path: string }) {
  const parts = props.path.split("/").filter(Boolean);
  return (
    <div className="page">
      <div className="tabs">
        <Link to="/compute" className={parts.length === 1 ? "active" : ""}>
          Clusters
        </Link>
        <Link to="/compute/pools" className={parts[1] === "pools" ? "active" : ""}>
          Pools
        </Link>
        <Link to="/compute/create" className={parts[1] === "create" ? "active" : ""}>
          Create cluster
        </Link>
      </div>
      {parts[1] === "pools" ? <Pools /> : parts[1] === "create" ? <CreateCluster /> : parts[1] === "clusters" && parts[2] ? <ClusterDetail id={parts[2]} /> : <Clusters />}
    </div>
  );
}

function Clusters() {
  const [data, error, reload] = useLoad(() => get("/api/2.1/clusters/list"), []);
  const clusters: any[] = data?.clusters ?? [];
  useInterval(reload, 2000, clusters.some((c) => STARTING.includes(c.state)));
  return (
    <>
      <ErrorBox error={error} />
      <table className="grid" data-testid="clusters">
        <thead>
          <tr>
            <th>Name</th>
            <th>State</th>
            <th>Workers</th>
            <th>Node type</th>
            <th>Runtime</th>
            <th>Creator</th>
          </tr>
        </thead>
        <tbody>
          {clusters.map((c) => (
            <tr key={c.cluster_id} data-testid="cluster-row">
              <td>
                <Link to={`/compute/clusters/${c.cluster_id}`}>{c.cluster_name}</Link>
              </td>
              <td>
                <StateBadge state={c.state} />
              </td>
              <td>{c.num_workers ?? 0}</td>
              <td>{c.node_type_id}</td>
              <td>{c.spark_version}</td>
              <td>{c.creator_user_name}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {data && clusters.length === 0 && <p className="muted">No clusters yet.</p>}
    </>
  );
}

function ClusterDetail(props: { id: string }) {
  const [tab, setTab] = useState("events");
  const [error, setError] = useState<unknown>();
  const [cluster, loadError, reload] = useLoad(() => get("/api/2.1/clusters/get", { cluster_id: props.id }), [props.id]);
  const [events, , reloadEvents] = useLoad(() => post("/api/2.1/clusters/events", { cluster_id: props.id, limit: 100, order: "DESC" }), [props.id]);
  const [libs, , reloadLibs] = useLoad(() => get("/api/2.0/libraries/cluster-status", { cluster_id: props.id }), [props.id]);
  const [pkg, setPkg] = useState("");
  const starting = cluster && STARTING.includes(cluster.state);
  useInterval(
    () => {
      reload();
      reloadEvents();
      reloadLibs();
    },
    2000,
    !!starting || (libs?.library_statuses ?? []).some((l: any) => ["PENDING", "INSTALLING", "RESOLVING"].includes(l.status)),
  );
  const act = async (fn: () => Promise<unknown>) => {
    setError(undefined);
    try {
      await fn();
      reload();
      reloadEvents();
      reloadLibs();
    } catch (err) {
      setError(err);
    }
  };
  if (!cluster) return <ErrorBox error={loadError} />;
  return (
    <div data-testid="cluster-detail">
      <div className="toolbar">
        <h2>{cluster.cluster_name}</h2>
        <StateBadge state={cluster.state} />
        {starting && <progress data-testid="starting" />}
        <span className="muted">{cluster.state_message}</span>
        <button onClick={() => act(() => post("/api/2.1/clusters/start", { cluster_id: props.id }))} disabled={cluster.state !== "TERMINATED"}>
          Start
        </button>
        <button onClick={() => act(() => post("/api/2.1/clusters/restart", { cluster_id: props.id }))} disabled={cluster.state !== "RUNNING"}>
          Restart
        </button>
        <button onClick={() => act(() => post("/api/2.1/clusters/delete", { cluster_id: props.id }))}>Terminate</button>
        <button
          className="danger"
          onClick={() => {
            if (confirm("Delete this cluster permanently?"))
              void act(async () => {
                await post("/api/2.1/clusters/permanent-delete", { cluster_id: props.id });
                navigate("/compute");
              });
          }}
        >
          Delete
        </button>
      </div>
      <ErrorBox error={error} onClose={() => setError(undefined)} />
      <dl className="facts">
        <dt>Cluster id</dt>
        <dd>{cluster.cluster_id}</dd>
        <dt>Runtime</dt>
        <dd>{cluster.spark_version}</dd>
        <dt>Node type</dt>
        <dd>{cluster.node_type_id}</dd>
        <dt>Workers</dt>
        <dd>{cluster.num_workers ?? 0}</dd>
        <dt>Autotermination</dt>
        <dd>{cluster.autotermination_minutes ? `${cluster.autotermination_minutes} min` : "off"}</dd>
        <dt>Driver logs</dt>
        <dd data-testid="driver-logs">
          {logDestination(cluster) ? (
            <Link to={`/data/dbfs${logDestination(cluster)}/${cluster.cluster_id}/driver`}>{`${logDestination(cluster)}/${cluster.cluster_id}/driver`}</Link>
          ) : (
            <span className="muted">Set cluster_log_conf to deliver the driver's logs to DBFS.</span>
          )}
        </dd>
        <dt>Spark UI</dt>
        <dd>
          <SparkUiLink clusterId={cluster.cluster_id} running={cluster.state === "RUNNING" || cluster.state === "RESIZING"} />
        </dd>
      </dl>
      <div className="tabs">
        {["events", "libraries", "configuration"].map((t) => (
          <button key={t} className={`link ${tab === t ? "active" : ""}`} onClick={() => setTab(t)}>
            {t[0].toUpperCase() + t.slice(1)}
          </button>
        ))}
      </div>
      {tab === "events" && (
        <table className="grid" data-testid="events">
          <tbody>
            {(events?.events ?? []).map((e: any, i: number) => (
              <tr key={i}>
                <td>{formatTime(e.timestamp)}</td>
                <td>{e.type}</td>
                <td>{e.details ? JSON.stringify(e.details) : ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {tab === "libraries" && (
        <div data-testid="libraries">
          <form
            className="inline"
            onSubmit={(e) => {
              e.preventDefault();
              if (pkg) void act(() => post("/api/2.0/libraries/install", { cluster_id: props.id, libraries: [{ pypi: { package: pkg } }] }));
              setPkg("");
            }}
          >
            <input placeholder="PyPI package (e.g. requests==2.32.3)" value={pkg} onChange={(e) => setPkg(e.target.value)} />
            <button type="submit">Install</button>
          </form>
          <table className="grid">
            <tbody>
              {(libs?.library_statuses ?? []).map((l: any, i: number) => (
                <tr key={i}>
                  <td>{JSON.stringify(l.library)}</td>
                  <td>
                    <StateBadge state={l.status} />
                  </td>
                  <td>{(l.messages ?? []).join(" ")}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {tab === "configuration" && <pre className="text-output">{JSON.stringify(cluster, null, 2)}</pre>}
    </div>
  );
}

// Where the cluster delivers its logs (cluster_log_conf), as a DBFS path.
function logDestination(cluster: any): string | null {
  const dest: string | undefined = cluster.cluster_log_conf?.dbfs?.destination ?? cluster.cluster_log_conf?.volumes?.destination;
  if (!dest) return null;
  return dest.replace(/^dbfs:/, "").replace(/\/+$/, "");
}

function keyValues(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^\s*([^=\s]+)\s*[= ]\s*(.*)$/.exec(line);
    if (m) out[m[1]] = m[2].trim();
  }
  return out;
}

function CreateCluster() {
  const [versions] = useLoad(() => get("/api/2.0/clusters/spark-versions"), []);
  const [nodes] = useLoad(() => get("/api/2.0/clusters/list-node-types"), []);
  const [pools] = useLoad(() => get("/api/2.0/instance-pools/list"), []);
  const [form, setForm] = useState({ name: "", mode: "single", workers: 1, node: "", version: "", pool: "", autoterm: 60, conf: "", env: "" });
  const [error, setError] = useState<unknown>();
  const set = (patch: Partial<typeof form>) => setForm({ ...form, ...patch });
  return (
    <form
      className="form"
      data-testid="create-cluster"
      onSubmit={async (e) => {
        e.preventDefault();
        setError(undefined);
        const single = form.mode === "single";
        const body: any = {
          cluster_name: form.name,
          spark_version: form.version || versions?.versions?.[0]?.key,
          autotermination_minutes: Number(form.autoterm),
          num_workers: single ? 0 : Number(form.workers),
          spark_conf: { ...keyValues(form.conf), ...(single ? { "spark.databricks.cluster.profile": "singleNode", "spark.master": "local[*]" } : {}) },
          spark_env_vars: keyValues(form.env),
        };
        if (single) body.custom_tags = { ResourceClass: "SingleNode" };
        if (form.pool) body.instance_pool_id = form.pool;
        else body.node_type_id = form.node || nodes?.node_types?.[0]?.node_type_id;
        try {
          const r = await post("/api/2.1/clusters/create", body);
          navigate(`/compute/clusters/${r.cluster_id}`);
        } catch (err) {
          setError(err);
        }
      }}
    >
      <ErrorBox error={error} />
      <label>
        Name <input name="cluster_name" value={form.name} onChange={(e) => set({ name: e.target.value })} required />
      </label>
      <label>
        Mode
        <select value={form.mode} onChange={(e) => set({ mode: e.target.value })}>
          <option value="single">Single node</option>
          <option value="multi">With workers</option>
        </select>
      </label>
      {form.mode === "multi" && (
        <label>
          Workers <input type="number" min={1} value={form.workers} onChange={(e) => set({ workers: Number(e.target.value) })} />
        </label>
      )}
      <label>
        Runtime
        <select value={form.version} onChange={(e) => set({ version: e.target.value })}>
          {(versions?.versions ?? []).map((v: any) => (
            <option key={v.key} value={v.key}>
              {v.name}
            </option>
          ))}
        </select>
      </label>
      <label>
        Pool
        <select value={form.pool} onChange={(e) => set({ pool: e.target.value })}>
          <option value="">None</option>
          {(pools?.instance_pools ?? []).map((p: any) => (
            <option key={p.instance_pool_id} value={p.instance_pool_id}>
              {p.instance_pool_name}
            </option>
          ))}
        </select>
      </label>
      {!form.pool && (
        <label>
          Node type
          <select value={form.node} onChange={(e) => set({ node: e.target.value })}>
            {(nodes?.node_types ?? []).map((n: any) => (
              <option key={n.node_type_id} value={n.node_type_id}>
                {n.node_type_id} ({n.num_cores} cores, {n.memory_mb} MB)
              </option>
            ))}
          </select>
        </label>
      )}
      <label>
        Terminate after (minutes of inactivity, 0 = never)
        <input type="number" min={0} value={form.autoterm} onChange={(e) => set({ autoterm: Number(e.target.value) })} />
      </label>
      <label>
        Spark config (one <code>key value</code> per line)
        <textarea value={form.conf} onChange={(e) => set({ conf: e.target.value })} />
      </label>
      <label>
        Environment variables (one <code>NAME=value</code> per line)
        <textarea value={form.env} onChange={(e) => set({ env: e.target.value })} />
      </label>
      <button type="submit">Create cluster</button>
    </form>
  );
}

function Pools() {
  const [data, error] = useLoad(() => get("/api/2.0/instance-pools/list"), []);
  return (
    <>
      <ErrorBox error={error} />
      <table className="grid" data-testid="pools">
        <thead>
          <tr>
            <th>Name</th>
            <th>Node type</th>
            <th>Idle</th>
            <th>In use</th>
            <th>Pending</th>
            <th>Min idle / max</th>
          </tr>
        </thead>
        <tbody>
          {(data?.instance_pools ?? []).map((p: any) => (
            <tr key={p.instance_pool_id}>
              <td>{p.instance_pool_name}</td>
              <td>{p.node_type_id}</td>
              <td>{p.stats?.idle_count ?? 0}</td>
              <td>{p.stats?.used_count ?? 0}</td>
              <td>{(p.stats?.pending_idle_count ?? 0) + (p.stats?.pending_used_count ?? 0)}</td>
              <td>
                {p.min_idle_instances ?? 0} / {p.max_capacity ?? "∞"}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

// A new tab cannot carry the token header: ask for a one-time link that signs the tab in.
function SparkUiLink(props: { clusterId: string; running: boolean }) {
  const [error, setError] = useState<unknown>();
  if (!props.running) return <span className="muted">Available while the cluster runs.</span>;
  return (
    <>
      <button
        className="link"
        data-testid="spark-ui"
        onClick={async () => {
          setError(undefined);
          // Opened now, within the click, so that no popup blocker stops it; pointed later.
          const tab = window.open("about:blank", "_blank");
          try {
            const grant = await post("/api/2.0/kiln/driver-proxy-grants", { cluster_id: props.clusterId });
            if (tab) {
              tab.opener = null;
              tab.location.href = grant.url;
            } else window.location.href = grant.url;
          } catch (err) {
            tab?.close();
            setError(err);
          }
        }}
      >
        Spark UI (through the control plane)
      </button>
      <ErrorBox error={error} />
    </>
  );
}
