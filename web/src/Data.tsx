import { useState } from "react";
import { authHeaders, get, post, url } from "./api";
import { ErrorBox, formatTime, Link, useLoad } from "./components";
import { Table } from "./Outputs";

// The catalog explorer (Unity Catalog API, when the server offers it) and the DBFS browser.
export default function DataPage(props: { path: string }) {
  const parts = props.path.split("/").filter(Boolean).map(decodeURIComponent);
  return (
    <div className="page">
      <div className="tabs">
        <Link to="/data" className={parts[1] !== "dbfs" ? "active" : ""}>
          Catalog
        </Link>
        <Link to="/data/dbfs" className={parts[1] === "dbfs" ? "active" : ""}>
          DBFS
        </Link>
      </div>
      {parts[1] === "dbfs" ? <Dbfs path={"/" + parts.slice(2).join("/")} /> : <Catalog parts={parts.slice(1)} />}
    </div>
  );
}

function Catalog(props: { parts: string[] }) {
  const [catalog, schema, table] = props.parts;
  const enc = encodeURIComponent;
  const [data, error] = useLoad(async () => {
    if (table) return { table: await get(`/api/2.1/unity-catalog/tables/${enc(`${catalog}.${schema}.${table}`)}`) };
    if (schema)
      return {
        tables: (await get("/api/2.1/unity-catalog/tables", { catalog_name: catalog, schema_name: schema })).tables ?? [],
        volumes: (await get("/api/2.1/unity-catalog/volumes", { catalog_name: catalog, schema_name: schema }).catch(() => ({}))).volumes ?? [],
      };
    if (catalog) return { schemas: (await get("/api/2.1/unity-catalog/schemas", { catalog_name: catalog })).schemas ?? [] };
    return { catalogs: (await get("/api/2.1/unity-catalog/catalogs")).catalogs ?? [] };
  }, [catalog, schema, table]);
  const base = ["/data", ...props.parts.map(enc)];
  return (
    <div data-testid="catalog">
      <div className="crumbs">
        <Link to="/data">Catalogs</Link>
        {props.parts.map((p, i) => (
          <span key={i}>
            {" / "}
            <Link to={["/data", ...props.parts.slice(0, i + 1).map(enc)].join("/")}>{p}</Link>
          </span>
        ))}
      </div>
      <ErrorBox error={error} />
      {data?.catalogs && <NameList items={data.catalogs} base={base.join("/")} />}
      {data?.schemas && <NameList items={data.schemas} base={base.join("/")} />}
      {data?.tables && (
        <>
          <h3>Tables</h3>
          <NameList items={data.tables} base={base.join("/")} />
          <h3>Volumes</h3>
          <ul>
            {data.volumes.map((v: any) => (
              <li key={v.name}>
                <Link to={`/data/dbfs/Volumes/${enc(catalog)}/${enc(schema)}/${enc(v.name)}`}>{v.name}</Link>
              </li>
            ))}
          </ul>
        </>
      )}
      {data?.table && <TableInfo table={data.table} />}
    </div>
  );
}

function NameList(props: { items: any[]; base: string }) {
  return (
    <ul data-testid="names">
      {props.items.map((i) => (
        <li key={i.name}>
          <Link to={`${props.base}/${encodeURIComponent(i.name)}`}>{i.name}</Link> <span className="muted">{i.comment ?? ""}</span>
        </li>
      ))}
    </ul>
  );
}

function TableInfo(props: { table: any }) {
  const t = props.table;
  const [version, setVersion] = useState<number | undefined>();
  const [history, historyError] = useLoad(() => get("/api/2.0/kiln/tables/history", { full_name: t.full_name }), [t.full_name]);
  const [preview, previewError] = useLoad(
    () => get("/api/2.0/kiln/tables/preview", { full_name: t.full_name, version, limit: 100 }),
    [t.full_name, version],
  );
  return (
    <div data-testid="table-info">
      <h3>{t.full_name}</h3>
      <p className="muted">
        {t.table_type} {t.data_source_format} {t.storage_location}
      </p>
      <h4>Schema</h4>
      <table className="grid" data-testid="columns">
        <thead>
          <tr>
            <th>Column</th>
            <th>Type</th>
            <th>Comment</th>
          </tr>
        </thead>
        <tbody>
          {(t.columns ?? []).map((c: any) => (
            <tr key={c.name}>
              <td>{c.name}</td>
              <td>{c.type_text}</td>
              <td>{c.comment}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h4 data-testid="preview-title">{version === undefined ? "Sample rows" : `Rows at version ${version}`}</h4>
      <ErrorBox error={previewError} />
      {preview && (
        <div data-testid="preview" data-version={preview.version}>
          <Table bundle={preview} />
        </div>
      )}
      <h4>History</h4>
      <ErrorBox error={historyError} />
      <table className="grid" data-testid="history">
        <thead>
          <tr>
            <th>Version</th>
            <th>Time</th>
            <th>Operation</th>
            <th>Parameters</th>
          </tr>
        </thead>
        <tbody>
          {(history?.history ?? []).map((h: any) => (
            <tr key={h.version} data-testid="history-row" data-version={h.version}>
              <td>
                <button className="link" onClick={() => setVersion(h.version)}>
                  {h.version}
                </button>
              </td>
              <td>{formatTime(h.timestamp)}</td>
              <td>{h.operation}</td>
              <td className="muted">{JSON.stringify(h.operationParameters)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Dbfs(props: { path: string }) {
  const path = props.path.replace(/\/+$/, "") || "/";
  const [data, error, reload] = useLoad(() => get("/api/2.0/dbfs/list", { path }), [path]);
  const [err, setErr] = useState<unknown>();
  const enc = (p: string) => p.split("/").map(encodeURIComponent).join("/");
  return (
    <div data-testid="dbfs">
      <div className="toolbar">
        <h3>dbfs:{path}</h3>
        <input
          type="file"
          data-testid="dbfs-upload"
          onChange={async (e) => {
            const f = e.target.files?.[0];
            if (!f) return;
            try {
              const target = `${path === "/" ? "" : path}/${f.name}`;
              const r = await fetch(url(`/api/2.0/fs/files${enc(target)}`, { overwrite: true }), { method: "PUT", headers: authHeaders(), body: f });
              if (!r.ok) {
                const d = await r.json().catch(() => ({}));
                throw new Error(`${d.error_code}: ${d.message}`);
              }
              reload();
            } catch (x) {
              setErr(x);
            }
            e.target.value = "";
          }}
        />
      </div>
      <ErrorBox error={err ?? error} />
      <table className="grid">
        <tbody>
          {(data?.files ?? []).map((f: any) => (
            <tr key={f.path}>
              <td>{f.is_dir ? <Link to={`/data/dbfs${enc(f.path)}`}>{f.path.split("/").pop()}/</Link> : f.path.split("/").pop()}</td>
              <td>{f.is_dir ? "" : `${f.file_size} bytes`}</td>
              <td>{formatTime(f.modification_time)}</td>
              <td>
                {!f.is_dir && (
                  <button
                    className="link"
                    onClick={async () => {
                      const r = await fetch(url(`/api/2.0/fs/files${enc(f.path)}`), { headers: authHeaders() });
                      const a = document.createElement("a");
                      a.href = URL.createObjectURL(await r.blob());
                      a.download = f.path.split("/").pop();
                      a.click();
                    }}
                  >
                    Download
                  </button>
                )}
                <button
                  className="link danger"
                  onClick={() => {
                    if (confirm(`Delete ${f.path}?`)) void post("/api/2.0/dbfs/delete", { path: f.path, recursive: true }).then(reload, setErr);
                  }}
                >
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
