import { useEffect, useState } from "react";
import { get, post } from "./api";
import type { Me } from "./App";
import { ErrorBox, formatDuration, formatTime, Link, StateBadge, useInterval, useLoad } from "./components";
import { Outputs } from "./Outputs";
import { navigate } from "./router";

export default function JobsPage(props: { path: string; me: Me }) {
  const parts = props.path.split("/").filter(Boolean);
  if (parts[1] === "create") return <JobForm me={props.me} />;
  if (parts[1] && parts[2] === "edit") return <JobForm key={parts[1]} me={props.me} jobId={parts[1]} />;
  if (parts[1] && parts[2] === "runs" && parts[3]) return <RunPage runId={parts[3]} />;
  if (parts[1]) return <JobDetail jobId={parts[1]} />;
  return <JobList />;
}

function JobList() {
  const [data, error] = useLoad(() => get("/api/2.2/jobs/list", { limit: 100 }), []);
  return (
    <div className="page">
      <div className="toolbar">
        <h2>Jobs</h2>
        <Link to="/jobs/create" className="button" testId="create-job">
          Create job
        </Link>
      </div>
      <ErrorBox error={error} />
      <table className="grid" data-testid="jobs">
        <thead>
          <tr>
            <th>Name</th>
            <th>Job id</th>
            <th>Creator</th>
            <th>Schedule</th>
          </tr>
        </thead>
        <tbody>
          {(data?.jobs ?? []).map((j: any) => (
            <tr key={j.job_id}>
              <td>
                <Link to={`/jobs/${j.job_id}`}>{j.settings?.name}</Link>
              </td>
              <td>{j.job_id}</td>
              <td>{j.creator_user_name}</td>
              <td>{j.settings?.schedule?.quartz_cron_expression ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

interface TaskForm {
  key: string;
  // "other": a task type the form does not edit (for_each, sql, run_job...), kept as it is.
  type: "notebook" | "python" | "condition" | "other";
  path: string;
  dependsOn: string;
  cluster: string;
  params: string;
}

function parseParams(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const i = line.indexOf("=");
    if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

// The form's fields from a job's settings (`/api/2.2/jobs/get`).
function formOf(settings: any): { tasks: TaskForm[]; jobParams: string; cron: string } {
  const tasks: TaskForm[] = (settings.tasks ?? []).map((t: any) => {
    const common = {
      key: t.task_key,
      dependsOn: (t.depends_on ?? []).map((d: any) => d.task_key).join(", "),
      cluster: t.existing_cluster_id ?? "",
    };
    if (t.notebook_task) {
      const params = Object.entries(t.notebook_task.base_parameters ?? {}).map(([k, v]) => `${k}=${v}`);
      return { ...common, type: "notebook", path: t.notebook_task.notebook_path ?? "", params: params.join("\n") };
    }
    if (t.spark_python_task) {
      return { ...common, type: "python", path: t.spark_python_task.python_file ?? "", params: (t.spark_python_task.parameters ?? []).join("\n") };
    }
    if (t.condition_task) {
      const c = t.condition_task;
      return { ...common, type: "condition", path: `${c.left} ${c.op} ${c.right}`, params: "" };
    }
    return { ...common, type: "other", path: "", params: "" };
  });
  return {
    tasks,
    jobParams: (settings.parameters ?? []).map((p: any) => `${p.name}=${p.default}`).join("\n"),
    cron: settings.schedule?.quartz_cron_expression ?? "",
  };
}

// The fields each task type sets: replaced as a whole when the form saves a task.
const TASK_FIELDS = ["notebook_task", "spark_python_task", "condition_task", "existing_cluster_id", "depends_on"];

function JobForm(props: { me: Me; jobId?: string }) {
  const [clusters] = useLoad(() => get("/api/2.1/clusters/list"), []);
  const [original, loadError] = useLoad(async () => (props.jobId ? (await get("/api/2.2/jobs/get", { job_id: props.jobId })).settings : null), [props.jobId]);
  const blank = (n: number): TaskForm => ({ key: `task_${n}`, type: "notebook", path: "", dependsOn: "", cluster: "", params: "" });
  const [name, setName] = useState("");
  const [tasks, setTasks] = useState<TaskForm[]>([blank(1)]);
  const [cron, setCron] = useState("");
  const [jobParams, setJobParams] = useState("");
  const [error, setError] = useState<unknown>();
  const setTask = (i: number, patch: Partial<TaskForm>) => setTasks(tasks.map((t, j) => (j === i ? { ...t, ...patch } : t)));
  const running = (clusters?.clusters ?? []) as any[];
  useEffect(() => {
    if (!original) return;
    const form = formOf(original);
    setName(original.name ?? "");
    if (form.tasks.length) setTasks(form.tasks);
    setJobParams(form.jobParams);
    setCron(form.cron);
  }, [original]);
  if (props.jobId && !original) return <div className="page">{loadError ? <ErrorBox error={loadError} /> : <div className="loading">Loading job…</div>}</div>;
  return (
    <form
      className="form page"
      data-testid="job-form"
      onSubmit={async (e) => {
        e.preventDefault();
        setError(undefined);
        const body: any = {
          name,
          tasks: tasks.map((t) => {
            // Editing keeps what the form does not show (timeouts, retries, notifications...).
            const before = (original?.tasks ?? []).find((o: any) => o.task_key === t.key) ?? {};
            const task: any = { ...before, task_key: t.key };
            if (t.type !== "other") TASK_FIELDS.forEach((f) => delete task[f]);
            else delete task.depends_on;
            const deps = t.dependsOn.split(",").map((d) => d.trim()).filter(Boolean);
            if (deps.length) task.depends_on = deps.map((d) => ({ task_key: d }));
            // A task of an edited job that runs on a job or new cluster keeps it unless one is chosen.
            const ownCluster = before.job_cluster_key || before.new_cluster;
            const cluster = t.cluster || (ownCluster ? undefined : running[0]?.cluster_id);
            if (t.cluster) {
              delete task.job_cluster_key;
              delete task.new_cluster;
            }
            if (t.type === "notebook") {
              task.notebook_task = { notebook_path: t.path, base_parameters: parseParams(t.params) };
              if (cluster) task.existing_cluster_id = cluster;
            } else if (t.type === "python") {
              task.spark_python_task = { python_file: t.path, parameters: t.params.split("\n").filter(Boolean) };
              if (cluster) task.existing_cluster_id = cluster;
            } else if (t.type === "condition") {
              const [left, op, right] = t.path.split(/\s+/);
              task.condition_task = { left: left ?? "", op: op ?? "EQUAL_TO", right: right ?? "" };
            }
            return task;
          }),
        };
        const params = parseParams(jobParams);
        if (Object.keys(params).length) body.parameters = Object.entries(params).map(([name, d]) => ({ name, default: d }));
        if (cron) body.schedule = { quartz_cron_expression: cron, timezone_id: "UTC", pause_status: "UNPAUSED" };
        if (cron && original?.schedule?.quartz_cron_expression === cron) body.schedule = original.schedule;
        try {
          if (props.jobId) {
            const kept = { ...original };
            delete kept.schedule;
            delete kept.parameters;
            await post("/api/2.2/jobs/reset", { job_id: Number(props.jobId), new_settings: { ...kept, ...body } });
            navigate(`/jobs/${props.jobId}`);
            return;
          }
          const r = await post("/api/2.2/jobs/create", body);
          navigate(`/jobs/${r.job_id}`);
        } catch (err) {
          setError(err);
        }
      }}
    >
      <h2>{props.jobId ? `Edit job ${props.jobId}` : "Create job"}</h2>
      <ErrorBox error={error} />
      <label>
        Name <input name="job_name" value={name} onChange={(e) => setName(e.target.value)} required />
      </label>
      {tasks.map((t, i) => (
        <fieldset key={i} data-testid="task-form">
          <legend>Task {i + 1}</legend>
          <label>
            Task key <input name="task_key" value={t.key} onChange={(e) => setTask(i, { key: e.target.value })} />
          </label>
          <label>
            Type
            <select name="task_type" value={t.type} onChange={(e) => setTask(i, { type: e.target.value as TaskForm["type"] })}>
              <option value="notebook">Notebook</option>
              <option value="python">Python file</option>
              <option value="condition">If/else condition</option>
              {t.type === "other" && <option value="other">Other (kept as it is)</option>}
            </select>
          </label>
          <label>
            {t.type === "condition" ? "Condition (left OP right, e.g. 1 EQUAL_TO 1)" : "Path"}
            <input name="task_path" value={t.path} onChange={(e) => setTask(i, { path: e.target.value })} />
          </label>
          <label>
            Depends on (task keys, comma separated)
            <input name="depends_on" value={t.dependsOn} onChange={(e) => setTask(i, { dependsOn: e.target.value })} />
          </label>
          {t.type !== "condition" && t.type !== "other" && (
            <label>
              Cluster
              <select name="task_cluster" value={t.cluster} onChange={(e) => setTask(i, { cluster: e.target.value })}>
                {running.map((c) => (
                  <option key={c.cluster_id} value={c.cluster_id}>
                    {c.cluster_name} ({c.state})
                  </option>
                ))}
              </select>
            </label>
          )}
          {t.type !== "condition" && t.type !== "other" && (
            <label>
              Parameters (one name=value per line)
              <textarea value={t.params} onChange={(e) => setTask(i, { params: e.target.value })} />
            </label>
          )}
          {tasks.length > 1 && (
            <button type="button" className="link danger" onClick={() => setTasks(tasks.filter((_, j) => j !== i))}>
              Remove task
            </button>
          )}
        </fieldset>
      ))}
      <button type="button" onClick={() => setTasks([...tasks, { ...blank(tasks.length + 1), dependsOn: tasks[tasks.length - 1]?.key ?? "" }])} data-testid="add-task">
        Add task
      </button>
      <label>
        Job parameters (one name=default per line)
        <textarea value={jobParams} onChange={(e) => setJobParams(e.target.value)} />
      </label>
      <label>
        Schedule (Quartz cron, empty for none)
        <input value={cron} onChange={(e) => setCron(e.target.value)} placeholder="0 0 * * * ?" />
      </label>
      <button type="submit" data-testid="save-job">
        {props.jobId ? "Save" : "Create"}
      </button>
    </form>
  );
}

function runState(r: any): string {
  return r?.state?.result_state ?? r?.state?.life_cycle_state ?? r?.status?.state ?? "PENDING";
}

function JobDetail(props: { jobId: string }) {
  const [job, error] = useLoad(() => get("/api/2.2/jobs/get", { job_id: props.jobId }), [props.jobId]);
  const [runs, , reload] = useLoad(() => get("/api/2.2/jobs/runs/list", { job_id: props.jobId, limit: 25 }), [props.jobId]);
  const [actError, setActError] = useState<unknown>();
  useInterval(reload, 2000, (runs?.runs ?? []).some((r: any) => !r.state?.result_state));
  return (
    <div className="page">
      <div className="toolbar">
        <Link to="/jobs">Jobs</Link>
        <h2 data-testid="job-name">{job?.settings?.name}</h2>
        <Link to={`/jobs/${props.jobId}/edit`} className="button" testId="edit-job">
          Edit
        </Link>
        <button
          data-testid="run-now"
          onClick={async () => {
            try {
              const r = await post("/api/2.2/jobs/run-now", { job_id: Number(props.jobId) });
              navigate(`/jobs/${props.jobId}/runs/${r.run_id}`);
            } catch (err) {
              setActError(err);
            }
          }}
        >
          Run now
        </button>
        <button
          className="danger"
          onClick={async () => {
            if (!confirm("Delete this job?")) return;
            try {
              await post("/api/2.2/jobs/delete", { job_id: Number(props.jobId) });
              navigate("/jobs");
            } catch (err) {
              setActError(err);
            }
          }}
        >
          Delete
        </button>
      </div>
      <ErrorBox error={error ?? actError} />
      <h3>Runs</h3>
      <table className="grid" data-testid="runs">
        <thead>
          <tr>
            <th>Run</th>
            <th>Started</th>
            <th>Duration</th>
            <th>State</th>
          </tr>
        </thead>
        <tbody>
          {(runs?.runs ?? []).map((r: any) => (
            <tr key={r.run_id}>
              <td>
                <Link to={`/jobs/${props.jobId}/runs/${r.run_id}`}>{r.run_id}</Link>
              </td>
              <td>{formatTime(r.start_time)}</td>
              <td>{formatDuration(r.end_time && r.start_time ? r.end_time - r.start_time : null)}</td>
              <td>
                <StateBadge state={runState(r)} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Settings</h3>
      <pre className="text-output">{JSON.stringify(job?.settings ?? {}, null, 2)}</pre>
    </div>
  );
}

const COLORS: Record<string, string> = {
  SUCCESS: "#16a34a",
  FAILED: "#dc2626",
  TIMEDOUT: "#dc2626",
  CANCELED: "#6b7280",
  EXCLUDED: "#9ca3af",
  UPSTREAM_FAILED: "#f97316",
  UPSTREAM_CANCELED: "#9ca3af",
  RUNNING: "#2563eb",
  PENDING: "#a3a3a3",
  QUEUED: "#a3a3a3",
  BLOCKED: "#a3a3a3",
  SKIPPED: "#d4d4d4",
};

// The task DAG: columns by depth (longest path from a root), one box per task, state colours.
export function Dag(props: { tasks: any[]; selected?: string; onSelect: (key: string) => void }) {
  const byKey = new Map(props.tasks.map((t) => [t.task_key, t]));
  const depth = new Map<string, number>();
  const depthOf = (k: string, seen = new Set<string>()): number => {
    if (depth.has(k)) return depth.get(k)!;
    if (seen.has(k)) return 0;
    seen.add(k);
    const deps = (byKey.get(k)?.depends_on ?? []).map((d: any) => d.task_key).filter((d: string) => byKey.has(d));
    const d = deps.length ? Math.max(...deps.map((x: string) => depthOf(x, seen))) + 1 : 0;
    depth.set(k, d);
    return d;
  };
  props.tasks.forEach((t) => depthOf(t.task_key));
  const columns: string[][] = [];
  props.tasks.forEach((t) => {
    const d = depth.get(t.task_key)!;
    (columns[d] ??= []).push(t.task_key);
  });
  const W = 180, H = 56, GX = 60, GY = 20;
  const pos = new Map<string, { x: number; y: number }>();
  columns.forEach((col, c) => col.forEach((k, r) => pos.set(k, { x: 10 + c * (W + GX), y: 10 + r * (H + GY) })));
  const width = 20 + columns.length * (W + GX);
  const height = 20 + Math.max(1, ...columns.map((c) => c.length)) * (H + GY);
  return (
    <svg className="dag" data-testid="dag" width={width} height={height} role="img" aria-label="task graph">
      {props.tasks.flatMap((t) =>
        (t.depends_on ?? [])
          .filter((d: any) => pos.has(d.task_key))
          .map((d: any) => {
            const a = pos.get(d.task_key)!, b = pos.get(t.task_key)!;
            return (
              <path
                key={`${d.task_key}->${t.task_key}`}
                d={`M${a.x + W},${a.y + H / 2} C${a.x + W + GX / 2},${a.y + H / 2} ${b.x - GX / 2},${b.y + H / 2} ${b.x},${b.y + H / 2}`}
                stroke="#9ca3af"
                fill="none"
              />
            );
          }),
      )}
      {props.tasks.map((t) => {
        const p = pos.get(t.task_key)!;
        const state = runState(t);
        const dur = t.end_time && t.start_time ? t.end_time - t.start_time : null;
        return (
          <g
            key={t.task_key}
            data-testid="dag-task"
            data-task={t.task_key}
            data-state={state}
            transform={`translate(${p.x},${p.y})`}
            onClick={() => props.onSelect(t.task_key)}
            style={{ cursor: "pointer" }}
          >
            <rect width={W} height={H} rx={6} fill="#fff" stroke={COLORS[state] ?? "#a3a3a3"} strokeWidth={props.selected === t.task_key ? 4 : 2} />
            <rect width={8} height={H} rx={3} fill={COLORS[state] ?? "#a3a3a3"} />
            <text x={16} y={22} fontSize={13} fontWeight={600}>
              {t.task_key}
            </text>
            <text x={16} y={42} fontSize={11} fill="#555">
              {state} {formatDuration(dur)}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

function TaskOutput(props: { task: any }) {
  const [out, error] = useLoad(
    () => (props.task.run_id ? get("/api/2.2/jobs/runs/get-output", { run_id: props.task.run_id }) : Promise.resolve(null)),
    [props.task.run_id, runState(props.task)],
  );
  const [iterations] = useLoad(
    () => (props.task.for_each_task ? get("/api/2.2/jobs/runs/get", { run_id: props.task.run_id }) : Promise.resolve(null)),
    [props.task.run_id, runState(props.task)],
  );
  return (
    <div className="task-output" data-testid="task-output">
      <h3>
        {props.task.task_key} <StateBadge state={runState(props.task)} />
      </h3>
      <ErrorBox error={error} />
      {props.task.state?.state_message && <p className="muted">{props.task.state.state_message}</p>}
      {out?.error && (
        <div className="error-output">
          <div className="ename">{out.error}</div>
          <pre>{out.error_trace}</pre>
        </div>
      )}
      {out?.notebook_output?.result !== undefined && <pre className="text-output">{String(out.notebook_output.result)}</pre>}
      {out?.logs && <pre className="text-output">{out.logs}</pre>}
      {Array.isArray(out?.outputs) && <Outputs outputs={out.outputs} />}
      {iterations?.iterations && (
        <details open data-testid="iterations">
          <summary>{iterations.iterations.length} iterations</summary>
          <table className="grid">
            <tbody>
              {iterations.iterations.map((it: any, i: number) => (
                <tr key={i}>
                  <td>{i}</td>
                  <td>{it.run_id}</td>
                  <td>
                    <StateBadge state={runState(it)} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      )}
    </div>
  );
}

function RunPage(props: { runId: string }) {
  const [run, error, reload] = useLoad(() => get("/api/2.2/jobs/runs/get", { run_id: props.runId }), [props.runId]);
  const [selected, setSelected] = useState<string>();
  const [actError, setActError] = useState<unknown>();
  const done = !!run?.state?.result_state || run?.state?.life_cycle_state === "TERMINATED" || run?.state?.life_cycle_state === "INTERNAL_ERROR";
  useInterval(reload, 1000, !!run && !done);
  const tasks: any[] = run?.tasks ?? [];
  const task = tasks.find((t) => t.task_key === selected);
  const act = async (fn: () => Promise<unknown>) => {
    try {
      setActError(undefined);
      await fn();
      reload();
    } catch (err) {
      setActError(err);
    }
  };
  return (
    <div className="page" data-testid="run-page">
      <div className="toolbar">
        {run && <Link to={`/jobs/${run.job_id}`}>{run.run_name ?? `Job ${run.job_id}`}</Link>}
        <h2>Run {props.runId}</h2>
        <span data-testid="run-state">
          <StateBadge state={runState(run)} />
        </span>
        <span className="muted">{formatDuration(run?.run_duration ?? (run?.end_time && run?.start_time ? run.end_time - run.start_time : null))}</span>
        <button disabled={done} onClick={() => act(() => post("/api/2.2/jobs/runs/cancel", { run_id: Number(props.runId) }))}>
          Cancel
        </button>
        <button
          disabled={!done || runState(run) === "SUCCESS"}
          onClick={() => act(() => post("/api/2.2/jobs/runs/repair", { run_id: Number(props.runId), rerun_all_failed_tasks: true }))}
        >
          Repair run
        </button>
      </div>
      <ErrorBox error={error ?? actError} />
      {run && <Dag tasks={tasks} selected={selected} onSelect={setSelected} />}
      {task && <TaskOutput task={task} />}
    </div>
  );
}
