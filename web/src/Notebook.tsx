import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError, b64decode, b64encode, errorMessage, get, post, streamEvents } from "./api";
import { ErrorBox, formatTime, Link, StateBadge } from "./components";
import { CodeEditor } from "./Editor";
import { commandOf, Cell, newId, parseSource, renderSource } from "./notebookSource";
import { Outputs } from "./Outputs";
import { decodePath, encodePath } from "./router";
import { baseName, parentOf } from "./Workspace";

interface Cluster {
  cluster_id: string;
  cluster_name: string;
  state: string;
  state_message?: string;
}

const SINGLE_NODE = {
  spark_conf: { "spark.databricks.cluster.profile": "singleNode", "spark.master": "local[*]" },
  custom_tags: { ResourceClass: "SingleNode" },
  num_workers: 0,
};

// A widget defined by `dbutils.widgets.*` in the attached context (`dbutils.widgets._describe()`).
interface Widget {
  name: string;
  kind: "text" | "dropdown" | "combobox" | "multiselect";
  label: string;
  default: string;
  choices: string[];
  value: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function bufferKey(path: string): string {
  return `kiln.notebook.${path}`;
}

// The 1.2 result as nbformat outputs (the fallback when the stream is unavailable).
function outputsOfResults(results: any): Record<string, any>[] {
  if (!results) return [];
  if (results.resultType === "error") return [{ output_type: "error", ename: results.summary ?? "Error", evalue: "", traceback: [results.cause ?? ""] }];
  if (results.resultType === "table")
    return [{ output_type: "display_data", data: { "application/vnd.kiln.table+json": { schema: results.schema, data: results.data, truncated: results.truncated } } }];
  if (results.resultType === "image") return [{ output_type: "display_data", data: { "image/png": String(results.fileName).split(",")[1] } }];
  if (results.resultType === "images")
    return (results.fileNames as string[]).map((f) => ({ output_type: "display_data", data: { "image/png": f.split(",")[1] } }));
  return results.data ? [{ output_type: "stream", name: "stdout", text: String(results.data) }] : [];
}

export default function NotebookPage(props: { path: string }) {
  const path = decodePath(props.path);
  const [language, setLanguage] = useState("PYTHON");
  const [cells, setCells] = useState<Cell[] | null>(null);
  const [selected, setSelected] = useState(0);
  const [commandMode, setCommandMode] = useState(false);
  const [error, setError] = useState<unknown>();
  const [saveState, setSaveState] = useState("saved");
  const [clusters, setClusters] = useState<Cluster[]>([]);
  const [clusterId, setClusterId] = useState<string>(() => localStorage.getItem(`kiln.attach.${path}`) ?? "");
  const [running, setRunning] = useState<string | null>(null);
  const [revisions, setRevisions] = useState<any[] | null>(null);
  const [widgets, setWidgets] = useState<Widget[]>([]);
  // Widget commands and cells share the context one at a time: each waits for the one before.
  const widgetQueue = useRef<Promise<unknown>>(Promise.resolve());
  const cellsRef = useRef<Cell[]>([]);
  const context = useRef<{ cluster: string; id: string } | null>(null);
  const current = useRef<{ cellId: string; commandId: string; abort: AbortController } | null>(null);
  const stopQueue = useRef(false);
  const dirty = useRef(false);
  const saveTimer = useRef<number>();
  const lastD = useRef(0);

  cellsRef.current = cells ?? [];
  const cluster = clusters.find((c) => c.cluster_id === clusterId);

  // Load: SOURCE from the workspace, outputs from the newest revision, unsaved edits from the buffer.
  useEffect(() => {
    let live = true;
    (async () => {
      try {
        const status = await get("/api/2.0/workspace/get-status", { path });
        const lang = status.language ?? "PYTHON";
        const exported = await get("/api/2.0/workspace/export", { path, format: "SOURCE" });
        let loaded = parseSource(b64decode(exported.content ?? ""), lang);
        const revision = await get("/api/2.0/kiln/notebook-revisions/get", { path });
        if (revision.cells) {
          const saved: { command: string; outputs: any[] }[] = revision.cells;
          loaded = loaded.map((c, i) => (saved[i] && saved[i].command === c.command ? { ...c, outputs: saved[i].outputs } : c));
        }
        const buffered = localStorage.getItem(bufferKey(path));
        if (buffered) {
          const kept: Cell[] = JSON.parse(buffered);
          if (renderSource(kept, lang) !== renderSource(loaded, lang)) {
            loaded = kept;
            dirty.current = true;
          }
        }
        if (!live) return;
        setLanguage(lang);
        setCells(loaded.length ? loaded : [{ id: newId(), command: "", outputs: [] }]);
      } catch (err) {
        if (live) setError(err);
      }
    })();
    return () => {
      live = false;
    };
  }, [path]);

  const loadClusters = useCallback(async () => {
    try {
      const r = await get("/api/2.1/clusters/list");
      setClusters(r.clusters ?? []);
    } catch (err) {
      setError(err);
    }
  }, []);
  useEffect(() => {
    void loadClusters();
  }, [loadClusters]);
  useEffect(() => {
    if (!cluster || cluster.state === "RUNNING" || cluster.state === "TERMINATED") return;
    const id = setInterval(loadClusters, 2000);
    return () => clearInterval(id);
  }, [cluster, loadClusters]);

  // Autosave: the SOURCE to the workspace, the cells with outputs as a revision.
  const save = useCallback(async () => {
    const now = cellsRef.current;
    if (!now.length) return;
    setSaveState("saving");
    try {
      await post("/api/2.0/workspace/import", {
        path,
        format: "SOURCE",
        language,
        overwrite: true,
        content: b64encode(renderSource(now, language)),
      });
      await post("/api/2.0/kiln/notebook-revisions/save", {
        path,
        cells: now.map((c) => ({ command: c.command, outputs: c.outputs })),
      });
      if (now === cellsRef.current) {
        dirty.current = false;
        localStorage.removeItem(bufferKey(path));
      }
      setSaveState("saved");
    } catch (err) {
      setSaveState(err instanceof ApiError && err.status === 0 ? "offline: edits kept locally" : "save failed");
      if (!(err instanceof ApiError && err.status === 0)) setError(err);
      window.clearTimeout(saveTimer.current);
      saveTimer.current = window.setTimeout(() => void save(), 3000);
    }
  }, [path, language]);

  const update = useCallback(
    (fn: (cells: Cell[]) => Cell[], persist = true) => {
      setCells((prev) => {
        const next = fn(prev ?? []);
        cellsRef.current = next;
        if (persist) {
          dirty.current = true;
          localStorage.setItem(bufferKey(path), JSON.stringify(next));
          setSaveState("unsaved");
          window.clearTimeout(saveTimer.current);
          saveTimer.current = window.setTimeout(() => void save(), 1000);
        }
        return next;
      });
    },
    [path, save],
  );

  const setCell = (id: string, patch: Partial<Cell>, persist = true) =>
    update((cs) => cs.map((c) => (c.id === id ? { ...c, ...patch } : c)), persist);

  // -- compute ----------------------------------------------------------------------------
  const attach = (id: string) => {
    setClusterId(id);
    localStorage.setItem(`kiln.attach.${path}`, id);
    context.current = null;
    setWidgets([]);
  };

  const createCluster = async () => {
    setError(undefined);
    try {
      const versions = await get("/api/2.0/clusters/spark-versions");
      const nodes = await get("/api/2.0/clusters/list-node-types");
      const r = await post("/api/2.1/clusters/create", {
        cluster_name: `${baseName(path)} cluster`,
        spark_version: versions.versions?.[0]?.key,
        node_type_id: nodes.node_types?.[0]?.node_type_id,
        autotermination_minutes: 60,
        ...SINGLE_NODE,
      });
      await loadClusters();
      attach(r.cluster_id);
    } catch (err) {
      setError(err);
    }
  };

  const waitRunning = async (id: string) => {
    for (;;) {
      const c: Cluster = await get("/api/2.1/clusters/get", { cluster_id: id });
      setClusters((cs) => cs.map((x) => (x.cluster_id === id ? { ...x, state: c.state } : x)));
      if (c.state === "RUNNING") return;
      if (c.state === "TERMINATED" || c.state === "ERROR") {
        if (!confirm(`Cluster ${c.cluster_name} is ${c.state}. Start it?`)) throw new Error("The cluster is not running.");
        await post("/api/2.1/clusters/start", { cluster_id: id });
      }
      await sleep(1500);
    }
  };

  const ensureContext = async (): Promise<string> => {
    if (!clusterId) throw new Error("Attach the notebook to a cluster first.");
    if (context.current && context.current.cluster === clusterId) return context.current.id;
    await waitRunning(clusterId);
    const created = await post("/api/1.2/contexts/create", { clusterId, language: "python" });
    for (;;) {
      const s = await get("/api/1.2/contexts/status", { clusterId, contextId: created.id });
      if (s.status === "Running") break;
      if (s.status === "Error") throw new Error("The execution context failed to start.");
      await sleep(300);
    }
    context.current = { cluster: clusterId, id: created.id };
    return created.id;
  };

  // -- widgets ----------------------------------------------------------------------------
  // An internal command in the notebook's context, kept off the cells' outputs: its printed JSON.
  const internal = async (contextId: string, code: string): Promise<any> => {
    const created = await post("/api/1.2/commands/execute", { clusterId, contextId, language: "python", command: code });
    for (;;) {
      const s = await get("/api/1.2/commands/status", { clusterId, contextId, commandId: created.id });
      if (s.status === "Finished" && s.results?.resultType !== "error") {
        const lines = String(s.results?.data ?? "").trim().split("\n");
        return JSON.parse(lines[lines.length - 1] || "null");
      }
      if (["Finished", "Cancelled", "Error"].includes(s.status)) {
        throw new Error(String(s.results?.summary ?? s.results?.cause ?? "The widget command failed."));
      }
      await sleep(100);
    }
  };

  const queued = <T,>(fn: () => Promise<T>): Promise<T> => {
    const next = widgetQueue.current.then(fn, fn);
    widgetQueue.current = next.catch(() => undefined);
    return next;
  };

  const refreshWidgets = (contextId: string) =>
    queued(async () => setWidgets((await internal(contextId, "print(__import__('json').dumps(dbutils.widgets._describe()))")) ?? []));

  const setWidget = (name: string, value: string) => {
    const ctx = context.current;
    if (!ctx) return;
    setWidgets((ws) => ws.map((w) => (w.name === name ? { ...w, value } : w)));
    void queued(async () => {
      const code = `print(__import__('json').dumps(dbutils.widgets._set(${JSON.stringify(name)}, ${JSON.stringify(value)})))`;
      setWidgets((await internal(ctx.id, code)) ?? []);
    }).catch((err) => {
      setError(err);
      void refreshWidgets(ctx.id).catch(() => undefined);
    });
  };

  // -- running ----------------------------------------------------------------------------
  const runCell = async (cell: Cell): Promise<boolean> => {
    const command = commandOf(cell.command, language);
    if (command === null) {
      const text = cell.command.replace(/^%md[^\n]*\n?/, "");
      setCell(cell.id, { outputs: [{ output_type: "display_data", data: { "text/markdown": text } }], status: "Finished" });
      return true;
    }
    setCell(cell.id, { outputs: [], status: "Running" }, false);
    setRunning(cell.id);
    const started = performance.now();
    try {
      const contextId = await ensureContext();
      await widgetQueue.current;
      const created = await post("/api/1.2/commands/execute", { clusterId, contextId, language: command.language, command: command.code });
      const abort = new AbortController();
      current.current = { cellId: cell.id, commandId: created.id, abort };
      let final: any = null;
      try {
        await streamEvents(
          "/api/2.0/kiln/commands/stream",
          { clusterId, contextId, commandId: created.id },
          (name, data) => {
            if (name === "update") setCell(cell.id, { outputs: data.outputs, status: data.status }, false);
            else if (name === "done") final = data;
            else if (name === "error") throw new ApiError(400, data.error_code, data.message);
          },
          abort.signal,
        );
      } catch (err) {
        if (!(err instanceof ApiError)) {
          // The stream dropped: poll the 1.2 status instead.
          for (;;) {
            const s = await get("/api/1.2/commands/status", { clusterId, contextId, commandId: created.id });
            if (["Finished", "Cancelled", "Error"].includes(s.status)) {
              final = { status: s.status, outputs: outputsOfResults(s.results) };
              break;
            }
            await sleep(250);
          }
        } else throw err;
      }
      const outputs = [...(final?.outputs ?? [])];
      if (final?.error) outputs.push({ output_type: "kiln_error", message: final.error });
      if (final?.status === "Cancelled" && !outputs.length) outputs.push({ output_type: "kiln_error", message: "Command cancelled." });
      setCell(cell.id, { outputs, status: final?.status ?? "Finished", duration: performance.now() - started });
      if (/\bwidgets\b/.test(command.code)) await refreshWidgets(contextId).catch(setError);
      return final?.status === "Finished" && !outputs.some((o) => o.output_type === "error");
    } catch (err) {
      setCell(cell.id, { outputs: [{ output_type: "kiln_error", message: errorMessage(err) }], status: "Error" });
      return false;
    } finally {
      current.current = null;
      setRunning(null);
    }
  };

  const runMany = async (from: number, to?: number) => {
    stopQueue.current = false;
    const list = cellsRef.current.slice(from, to);
    for (const cell of list) {
      if (stopQueue.current) break;
      const fresh = cellsRef.current.find((c) => c.id === cell.id);
      if (!fresh) continue;
      const ok = await runCell(fresh);
      if (!ok) break;
    }
  };

  const cancel = async () => {
    stopQueue.current = true;
    const run = current.current;
    if (!run || !context.current) return;
    try {
      await post("/api/1.2/commands/cancel", { clusterId, contextId: context.current.id, commandId: run.commandId });
    } catch (err) {
      setError(err);
    }
  };

  const insert = (at: number, focus = true) => {
    update((cs) => [...cs.slice(0, at), { id: newId(), command: "", outputs: [] }, ...cs.slice(at)]);
    if (focus) setSelected(at);
  };
  const remove = (at: number) => {
    update((cs) => (cs.length > 1 ? cs.filter((_, i) => i !== at) : [{ id: newId(), command: "", outputs: [] }]));
    setSelected((s) => Math.max(0, Math.min(s, cellsRef.current.length - 2)));
  };

  // Jupyter/Databricks command-mode keys: A/B insert, DD delete, Enter edit, Shift+Enter run.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (!commandMode || (e.target as HTMLElement)?.closest?.(".cm-editor, input, textarea, select")) return;
      const cell = cellsRef.current[selected];
      if (e.key === "a" || e.key === "A") insert(selected);
      else if (e.key === "b" || e.key === "B") insert(selected + 1);
      else if (e.key === "d" || e.key === "D") {
        const now = Date.now();
        if (now - lastD.current < 600) {
          remove(selected);
          lastD.current = 0;
        } else lastD.current = now;
      } else if (e.key === "ArrowDown" || e.key === "j") setSelected((s) => Math.min(s + 1, cellsRef.current.length - 1));
      else if (e.key === "ArrowUp" || e.key === "k") setSelected((s) => Math.max(s - 1, 0));
      else if (e.key === "Enter" && e.shiftKey && cell) {
        e.preventDefault();
        void runCell(cell);
        setSelected((s) => Math.min(s + 1, cellsRef.current.length - 1));
      } else if (e.key === "Enter" && cell) {
        e.preventDefault();
        setCommandMode(false);
        (document.querySelectorAll(".cell .cm-content")[selected] as HTMLElement | undefined)?.focus();
      } else return;
      e.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  });

  useEffect(() => {
    const beforeUnload = (e: BeforeUnloadEvent) => {
      if (dirty.current) e.preventDefault();
    };
    window.addEventListener("beforeunload", beforeUnload);
    return () => window.removeEventListener("beforeunload", beforeUnload);
  }, []);

  const showRevisions = async () => {
    if (revisions) return setRevisions(null);
    try {
      const r = await get("/api/2.0/kiln/notebook-revisions/list", { path });
      setRevisions(r.revisions ?? []);
    } catch (err) {
      setError(err);
    }
  };
  const restore = async (id: number) => {
    try {
      const r = await get("/api/2.0/kiln/notebook-revisions/get", { path, revision_id: id });
      update(() => r.cells.map((c: any) => ({ id: newId(), command: c.command, outputs: c.outputs })));
      setRevisions(null);
    } catch (err) {
      setError(err);
    }
  };

  if (!cells) {
    return (
      <div className="notebook">
        <ErrorBox error={error} />
        {!error && <div className="loading">Loading notebook…</div>}
      </div>
    );
  }

  return (
    <div className="notebook" data-testid="notebook">
      <div className="toolbar sticky">
        <Link to={`/workspace${encodePath(parentOf(path))}`}>{parentOf(path)}</Link>
        <h2 data-testid="notebook-name">{baseName(path)}</h2>
        <span className="muted" data-testid="save-state">
          {saveState}
        </span>
        <select data-testid="cluster-select" value={clusterId} onChange={(e) => attach(e.target.value)}>
          <option value="">Detached</option>
          {clusters.map((c) => (
            <option key={c.cluster_id} value={c.cluster_id}>
              {c.cluster_name} ({c.state})
            </option>
          ))}
        </select>
        {cluster && <StateBadge state={cluster.state} />}
        {cluster && cluster.state === "TERMINATED" && (
          <button onClick={() => void post("/api/2.1/clusters/start", { cluster_id: cluster.cluster_id }).then(loadClusters, setError)}>Start</button>
        )}
        <button onClick={() => void createCluster()} data-testid="new-cluster">
          New single-node cluster
        </button>
        <button onClick={() => void runMany(0)} data-testid="run-all">
          Run all
        </button>
        <button onClick={() => void runMany(selected)}>Run below</button>
        <button onClick={() => void cancel()} disabled={!running} data-testid="cancel">
          Cancel
        </button>
        <button onClick={() => void showRevisions()}>Revision history</button>
      </div>
      <ErrorBox error={error} onClose={() => setError(undefined)} />
      {widgets.length > 0 && <WidgetsBar widgets={widgets} onChange={setWidget} />}
      {revisions && (
        <div className="revisions" data-testid="revisions">
          <h3>Revisions</h3>
          {revisions.length === 0 && <p className="muted">No revisions yet.</p>}
          {revisions.map((r) => (
            <div key={r.revision_id}>
              <button className="link" onClick={() => void restore(r.revision_id)}>
                {formatTime(r.created_at)}
              </button>
            </div>
          ))}
        </div>
      )}
      {cells.map((cell, i) => {
        return (
          <div
            key={cell.id}
            className={`cell ${i === selected ? "selected" : ""} ${commandMode && i === selected ? "command-mode" : ""}`}
            data-testid="cell"
            onClick={() => setSelected(i)}
          >
            <div className="cell-bar">
              <span className="muted">[{i + 1}]</span>
              <button className="link" onClick={() => void runCell(cell)} data-testid="run-cell">
                ▶ Run
              </button>
              <button className="link" onClick={() => insert(i + 1)}>
                + Cell below
              </button>
              <button className="link danger" onClick={() => remove(i)}>
                Delete
              </button>
              {cell.status && (
                <span className="muted" data-testid="cell-status">
                  {cell.status === "Running" ? "Running…" : cell.status}
                  {cell.duration ? ` (${Math.round(cell.duration)} ms)` : ""}
                </span>
              )}
            </div>
            <CodeEditor
              value={cell.command}
              onChange={(v) => setCell(cell.id, { command: v })}
              autoFocus={false}
              keys={{
                onRun: (advance) => {
                  void runCell(cellsRef.current.find((c) => c.id === cell.id) ?? cell);
                  if (advance) {
                    if (i === cellsRef.current.length - 1) insert(i + 1);
                    else setSelected(i + 1);
                  }
                },
                onEscape: () => {
                  setSelected(i);
                  setCommandMode(true);
                },
                onFocus: () => {
                  setSelected(i);
                  setCommandMode(false);
                },
              }}
            />
            {cell.outputs.length > 0 && <Outputs outputs={cell.outputs} />}
          </div>
        );
      })}
      <button className="add-cell" onClick={() => insert(cells.length)}>
        + Add cell
      </button>
    </div>
  );
}

// The widgets bar: one input per widget; a change is set in the context for the next `get`.
function WidgetsBar(props: { widgets: Widget[]; onChange: (name: string, value: string) => void }) {
  return (
    <div className="widgets" data-testid="widgets">
      {props.widgets.map((w) => (
        <label key={w.name} className="widget" data-widget={w.name}>
          <span>{w.label}</span>
          <WidgetInput widget={w} onChange={(v) => props.onChange(w.name, v)} />
        </label>
      ))}
    </div>
  );
}

function WidgetInput(props: { widget: Widget; onChange: (value: string) => void }) {
  const { widget: w, onChange } = props;
  const [draft, setDraft] = useState(w.value);
  useEffect(() => setDraft(w.value), [w.value]);
  const commit = () => {
    if (draft !== w.value) onChange(draft);
  };
  if (w.kind === "dropdown") {
    return (
      <select name={w.name} value={w.value} onChange={(e) => onChange(e.target.value)}>
        {w.choices.map((c) => (
          <option key={c} value={c}>
            {c}
          </option>
        ))}
      </select>
    );
  }
  if (w.kind === "multiselect") {
    const chosen = w.value ? w.value.split(",") : [];
    return (
      <select
        name={w.name}
        multiple
        value={chosen}
        onChange={(e) => onChange(Array.from(e.target.selectedOptions, (o) => o.value).join(","))}
      >
        {w.choices.map((c) => (
          <option key={c} value={c}>
            {c}
          </option>
        ))}
      </select>
    );
  }
  const list = w.kind === "combobox" ? `widget-choices-${w.name}` : undefined;
  return (
    <>
      <input
        name={w.name}
        value={draft}
        list={list}
        onChange={(e) => setDraft(e.target.value)}
        onBlur={commit}
        onKeyDown={(e) => {
          if (e.key === "Enter") commit();
        }}
      />
      {list && (
        <datalist id={list}>
          {w.choices.map((c) => (
            <option key={c} value={c} />
          ))}
        </datalist>
      )}
    </>
  );
}
