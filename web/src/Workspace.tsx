import { useEffect, useRef, useState } from "react";
import { authHeaders, b64encode, get, post, url } from "./api";
import { ErrorBox, Link, useLoad } from "./components";
import { encodePath, navigate } from "./router";

export interface WsObject {
  path: string;
  object_type: "DIRECTORY" | "NOTEBOOK" | "FILE" | string;
  language?: string;
  object_id?: number;
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

function joinPath(folder: string, name: string): string {
  return folder === "/" ? `/${name}` : `${folder}/${name}`;
}

export async function listFolder(path: string): Promise<WsObject[]> {
  const r = await get<{ objects?: WsObject[] }>("/api/2.0/workspace/list", { path });
  const objects = r.objects ?? [];
  const rank = (o: WsObject) => (o.object_type === "DIRECTORY" ? 0 : 1);
  return objects.sort((a, b) => rank(a) - rank(b) || a.path.localeCompare(b.path));
}

export const EMPTY_NOTEBOOK = "# Databricks notebook source\n";

const EXPERIMENT = "MLFLOW_EXPERIMENT";

async function experimentId(path: string): Promise<string> {
  const r = await get<{ experiment: { experiment_id: string } }>("/api/2.0/mlflow/experiments/get-by-name", {
    experiment_name: path,
  });
  return r.experiment.experiment_id;
}

// An experiment opens in MLflow's own UI (served by Kiln under /mlflow/).
async function openExperiment(path: string): Promise<void> {
  window.location.assign(`/mlflow/#/experiments/${await experimentId(path)}`);
}

// Move an object: the workspace API has no rename, so export, import at the new path, delete.
// An experiment cannot be exported: MLflow renames it, and its workspace object moves with it.
export async function moveObject(obj: WsObject, target: string): Promise<void> {
  if (obj.object_type === EXPERIMENT) {
    await post("/api/2.0/mlflow/experiments/update", { experiment_id: await experimentId(obj.path), new_name: target });
    return;
  }
  if (obj.object_type === "DIRECTORY") {
    const r = await get<{ content: string }>("/api/2.0/workspace/export", { path: obj.path, format: "DBC" });
    await post("/api/2.0/workspace/import", { path: target, format: "DBC", content: r.content });
    await post("/api/2.0/workspace/delete", { path: obj.path, recursive: true });
    return;
  }
  const format = obj.object_type === "NOTEBOOK" ? "SOURCE" : "AUTO";
  const r = await get<{ content: string }>("/api/2.0/workspace/export", { path: obj.path, format });
  await post("/api/2.0/workspace/import", {
    path: target,
    format,
    language: obj.language,
    content: r.content,
  });
  await post("/api/2.0/workspace/delete", { path: obj.path });
}

export async function download(path: string, format: string): Promise<void> {
  const response = await fetch(url("/api/2.0/workspace/export", { path, format, direct_download: true }), {
    headers: authHeaders(),
  });
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    throw new Error(`${data.error_code ?? response.status}: ${data.message ?? response.statusText}`);
  }
  const blob = await response.blob();
  const ext = format === "JUPYTER" ? ".ipynb" : format === "HTML" ? ".html" : format === "DBC" ? ".dbc" : ".py";
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = baseName(path) + ext;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function TreeNode(props: { path: string; current: string; depth: number }) {
  const inside = props.current === props.path || props.current.startsWith(props.path === "/" ? "/" : props.path + "/");
  const [open, setOpen] = useState(inside);
  const [children] = useLoad(() => (open ? listFolder(props.path) : Promise.resolve([])), [open, props.path, props.current]);
  useEffect(() => {
    if (inside) setOpen(true);
  }, [inside]);
  const folders = (children ?? []).filter((c) => c.object_type === "DIRECTORY");
  return (
    <div className="tree-node">
      <div className={`tree-row ${props.current === props.path ? "selected" : ""}`} style={{ paddingLeft: props.depth * 12 }}>
        <button className="twisty" onClick={() => setOpen(!open)} aria-label="toggle">
          {open ? "▾" : "▸"}
        </button>
        <Link to={`/workspace${encodePath(props.path === "/" ? "" : props.path)}`}>{props.path === "/" ? "Workspace" : baseName(props.path)}</Link>
      </div>
      {open && folders.map((f) => <TreeNode key={f.path} path={f.path} current={props.current} depth={props.depth + 1} />)}
    </div>
  );
}

export function WorkspacePage(props: { path: string }) {
  const path = decodeURIComponent(props.path).replace(/\/+$/, "") || "/";
  const [objects, loadError, reload] = useLoad(() => listFolder(path), [path]);
  const [error, setError] = useState<unknown>();
  const fileInput = useRef<HTMLInputElement>(null);

  const act = async (fn: () => Promise<void>) => {
    setError(undefined);
    try {
      await fn();
      reload();
    } catch (err) {
      setError(err);
    }
  };

  const newFolder = () => {
    const name = prompt("Folder name");
    if (name) void act(() => post("/api/2.0/workspace/mkdirs", { path: joinPath(path, name) }));
  };
  const newNotebook = () => {
    const name = prompt("Notebook name");
    if (!name) return;
    const target = joinPath(path, name);
    void act(async () => {
      await post("/api/2.0/workspace/import", {
        path: target,
        format: "SOURCE",
        language: "PYTHON",
        content: b64encode(EMPTY_NOTEBOOK + "\n"),
      });
      navigate(`/notebook${encodePath(target)}`);
    });
  };
  const importFile = async (file: File) => {
    const text = new Uint8Array(await file.arrayBuffer());
    let bin = "";
    for (let i = 0; i < text.length; i += 0x8000) bin += String.fromCharCode(...text.subarray(i, i + 0x8000));
    const lower = file.name.toLowerCase();
    const name = file.name.replace(/\.(py|sql|ipynb)$/i, "");
    const format = lower.endsWith(".ipynb") ? "JUPYTER" : lower.endsWith(".py") || lower.endsWith(".sql") ? "SOURCE" : "AUTO";
    const language = lower.endsWith(".sql") ? "SQL" : lower.endsWith(".py") ? "PYTHON" : undefined;
    await act(() => post("/api/2.0/workspace/import", { path: joinPath(path, name), format, language, content: btoa(bin) }));
  };

  return (
    <div className="workspace">
      <aside className="tree" data-testid="tree">
        <TreeNode path="/" current={path} depth={0} />
      </aside>
      <section className="listing">
        <div className="toolbar">
          <h2 data-testid="folder-path">{path}</h2>
          <button onClick={newFolder}>New folder</button>
          <button onClick={newNotebook}>New notebook</button>
          <button onClick={() => fileInput.current?.click()}>Import</button>
          <input
            ref={fileInput}
            type="file"
            data-testid="import-file"
            style={{ display: "none" }}
            onChange={(e) => {
              const f = e.target.files?.[0];
              if (f) void importFile(f);
              e.target.value = "";
            }}
          />
        </div>
        <ErrorBox error={error ?? loadError} onClose={() => setError(undefined)} />
        <table className="grid" data-testid="listing">
          <thead>
            <tr>
              <th>Name</th>
              <th>Type</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {path !== "/" && (
              <tr>
                <td colSpan={3}>
                  <Link to={`/workspace${encodePath(parentOf(path) === "/" ? "" : parentOf(path))}`}>..</Link>
                </td>
              </tr>
            )}
            {(objects ?? []).map((o) => (
              <tr key={o.path} data-testid="object-row" data-path={o.path}>
                <td>
                  {o.object_type === EXPERIMENT ? (
                    <button className="link" onClick={() => void act(() => openExperiment(o.path))}>
                      {"🧪 "}
                      {baseName(o.path)}
                    </button>
                  ) : (
                    <Link to={o.object_type === "DIRECTORY" ? `/workspace${encodePath(o.path)}` : `/notebook${encodePath(o.path)}`}>
                      {o.object_type === "DIRECTORY" ? "📁 " : o.object_type === "NOTEBOOK" ? "📓 " : "📄 "}
                      {baseName(o.path)}
                    </Link>
                  )}
                </td>
                <td>
                  {o.object_type === "NOTEBOOK"
                    ? `Notebook (${(o.language ?? "").toLowerCase()})`
                    : o.object_type === EXPERIMENT
                      ? "MLflow experiment"
                      : o.object_type.toLowerCase()}
                </td>
                <td className="actions">
                  <button
                    className="link"
                    onClick={() => {
                      const name = prompt("New name", baseName(o.path));
                      if (name && name !== baseName(o.path)) void act(() => moveObject(o, joinPath(parentOf(o.path), name)));
                    }}
                  >
                    Rename
                  </button>
                  <button
                    className="link"
                    onClick={() => {
                      const to = prompt("Move to folder", parentOf(o.path));
                      if (to) void act(() => moveObject(o, joinPath(to.replace(/\/+$/, "") || "/", baseName(o.path))));
                    }}
                  >
                    Move
                  </button>
                  {o.object_type === "NOTEBOOK" &&
                    ["SOURCE", "JUPYTER", "HTML"].map((f) => (
                      <button key={f} className="link" onClick={() => void act(() => download(o.path, f))}>
                        {f}
                      </button>
                    ))}
                  <button
                    className="link danger"
                    onClick={() => {
                      if (confirm(`Delete ${o.path}?`)) void act(() => post("/api/2.0/workspace/delete", { path: o.path, recursive: true }));
                    }}
                  >
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {objects && objects.length === 0 && <p className="muted">This folder is empty.</p>}
      </section>
    </div>
  );
}
