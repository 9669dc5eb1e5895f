import { useState } from "react";
import { api, errorMessage, get, post } from "./api";
import { ErrorBox, formatTime, StateBadge, useLoad } from "./components";

// Experiments and their runs, registered models and serving endpoints (MLflow's REST API).
export default function MlPage() {
  const [experiments, expError] = useLoad(() => post("/api/2.0/mlflow/experiments/search", { max_results: 100 }), []);
  const [models, modelError] = useLoad(() => get("/api/2.0/mlflow/registered-models/search", { max_results: 100 }), []);
  const [endpoints, endpointError] = useLoad(() => get("/api/2.0/serving-endpoints"), []);
  const [open, setOpen] = useState<string>();
  return (
    <div className="page">
      <h2>Experiments</h2>
      <ErrorBox error={expError} />
      <table className="grid" data-testid="experiments">
        <tbody>
          {(experiments?.experiments ?? []).map((e: any) => (
            <tr key={e.experiment_id}>
              <td>
                <button className="link" onClick={() => setOpen(open === e.experiment_id ? undefined : e.experiment_id)}>
                  {e.name}
                </button>
                {open === e.experiment_id && <Runs experimentId={e.experiment_id} />}
              </td>
              <td>{e.experiment_id}</td>
              <td>{formatTime(Number(e.last_update_time))}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Registered models</h2>
      <ErrorBox error={modelError} />
      <table className="grid" data-testid="models">
        <tbody>
          {(models?.registered_models ?? []).map((m: any) => (
            <tr key={m.name}>
              <td>{m.name}</td>
              <td>{(m.latest_versions ?? []).map((v: any) => `v${v.version}`).join(", ")}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Serving endpoints</h2>
      <ErrorBox error={endpointError} />
      <table className="grid" data-testid="endpoints">
        <tbody>
          {(endpoints?.endpoints ?? []).map((e: any) => (
            <tr key={e.name}>
              <td>{e.name}</td>
              <td>
                <StateBadge state={e.state?.ready} /> {e.state?.config_update}
              </td>
              <td>
                <QueryForm name={e.name} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Runs(props: { experimentId: string }) {
  const [runs, error] = useLoad(() => post("/api/2.0/mlflow/runs/search", { experiment_ids: [props.experimentId], max_results: 100 }), [props.experimentId]);
  return (
    <div className="nested" data-testid="runs">
      <ErrorBox error={error} />
      <table className="grid">
        <tbody>
          {(runs?.runs ?? []).map((r: any) => (
            <tr key={r.info.run_id}>
              <td>{r.info.run_name ?? r.info.run_id}</td>
              <td>
                <StateBadge state={r.info.status} />
              </td>
              <td>{(r.data?.metrics ?? []).map((m: any) => `${m.key}=${m.value}`).join(", ")}</td>
              <td className="muted">{(r.data?.params ?? []).map((p: any) => `${p.key}=${p.value}`).join(", ")}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function QueryForm(props: { name: string }) {
  const [body, setBody] = useState('{"dataframe_records": [{}]}');
  const [answer, setAnswer] = useState("");
  return (
    <form
      className="inline"
      onSubmit={async (e) => {
        e.preventDefault();
        try {
          const r = await api("POST", `/serving-endpoints/${encodeURIComponent(props.name)}/invocations`, JSON.parse(body));
          setAnswer(JSON.stringify(r));
        } catch (err) {
          setAnswer(errorMessage(err));
        }
      }}
    >
      <input value={body} onChange={(e) => setBody(e.target.value)} size={40} />
      <button type="submit">Query</button>
      {answer && <code>{answer}</code>}
    </form>
  );
}
