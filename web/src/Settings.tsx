import { useState } from "react";
import { get, post } from "./api";
import { ErrorBox, formatTime, useLoad } from "./components";

export default function SettingsPage() {
  const [tokens, tokenError, reloadTokens] = useLoad(() => get("/api/2.0/token/list"), []);
  const [scopes, scopeError, reloadScopes] = useLoad(() => get("/api/2.0/secrets/scopes/list"), []);
  const [comment, setComment] = useState("");
  const [days, setDays] = useState(90);
  const [created, setCreated] = useState("");
  const [scopeName, setScopeName] = useState("");
  const [openScope, setOpenScope] = useState("");
  const [error, setError] = useState<unknown>();
  const act = async (fn: () => Promise<void>) => {
    setError(undefined);
    try {
      await fn();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <div className="page">
      <h2>Settings</h2>
      <ErrorBox error={error ?? tokenError ?? scopeError} onClose={() => setError(undefined)} />
      <h3>Access tokens</h3>
      <form
        className="inline"
        onSubmit={(e) => {
          e.preventDefault();
          void act(async () => {
            const r = await post("/api/2.0/token/create", { comment, lifetime_seconds: days > 0 ? days * 86400 : undefined });
            setCreated(r.token_value);
            setComment("");
            reloadTokens();
          });
        }}
      >
        <input placeholder="Comment" value={comment} onChange={(e) => setComment(e.target.value)} />
        <input type="number" min={0} value={days} onChange={(e) => setDays(Number(e.target.value))} title="Lifetime in days (0: none)" />
        <button type="submit">Generate new token</button>
      </form>
      {created && (
        <div className="notice" data-testid="new-token">
          Copy this token now; it is not shown again: <code>{created}</code>
        </div>
      )}
      <table className="grid" data-testid="tokens">
        <thead>
          <tr>
            <th>Comment</th>
            <th>Created</th>
            <th>Expires</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {(tokens?.token_infos ?? []).map((t: any) => (
            <tr key={t.token_id}>
              <td>{t.comment}</td>
              <td>{formatTime(t.creation_time)}</td>
              <td>{t.expiry_time > 0 ? formatTime(t.expiry_time) : "never"}</td>
              <td>
                <button className="link danger" onClick={() => void act(async () => (await post("/api/2.0/token/delete", { token_id: t.token_id }), reloadTokens()))}>
                  Revoke
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Secret scopes</h3>
      <form
        className="inline"
        onSubmit={(e) => {
          e.preventDefault();
          void act(async () => {
            await post("/api/2.0/secrets/scopes/create", { scope: scopeName });
            setScopeName("");
            reloadScopes();
          });
        }}
      >
        <input placeholder="Scope name" value={scopeName} onChange={(e) => setScopeName(e.target.value)} />
        <button type="submit">Create scope</button>
      </form>
      <table className="grid" data-testid="scopes">
        <tbody>
          {(scopes?.scopes ?? []).map((s: any) => (
            <tr key={s.name}>
              <td>
                <button className="link" onClick={() => setOpenScope(openScope === s.name ? "" : s.name)}>
                  {s.name}
                </button>
                {openScope === s.name && <Secrets scope={s.name} />}
              </td>
              <td>{s.backend_type}</td>
              <td>
                <button
                  className="link danger"
                  onClick={() => {
                    if (confirm(`Delete scope ${s.name}?`)) void act(async () => (await post("/api/2.0/secrets/scopes/delete", { scope: s.name }), reloadScopes()));
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

function Secrets(props: { scope: string }) {
  const [data, error, reload] = useLoad(() => get("/api/2.0/secrets/list", { scope: props.scope }), [props.scope]);
  const [key, setKey] = useState("");
  const [value, setValue] = useState("");
  const [err, setErr] = useState<unknown>();
  return (
    <div className="nested">
      <ErrorBox error={err ?? error} />
      <ul>
        {(data?.secrets ?? []).map((s: any) => (
          <li key={s.key}>
            {s.key} <span className="muted">{formatTime(s.last_updated_timestamp)}</span>
          </li>
        ))}
      </ul>
      <form
        className="inline"
        onSubmit={async (e) => {
          e.preventDefault();
          try {
            await post("/api/2.0/secrets/put", { scope: props.scope, key, string_value: value });
            setKey("");
            setValue("");
            reload();
          } catch (x) {
            setErr(x);
          }
        }}
      >
        <input placeholder="Key" value={key} onChange={(e) => setKey(e.target.value)} />
        <input type="password" placeholder="Value" value={value} onChange={(e) => setValue(e.target.value)} />
        <button type="submit">Put secret</button>
      </form>
    </div>
  );
}
