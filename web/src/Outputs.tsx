import { useMemo, useState } from "react";
import DOMPurify from "dompurify";
import { marked } from "marked";

export const TABLE_MIME = "application/vnd.kiln.table+json";

export type Output = Record<string, any>;

// Strip terminal colour codes from tracebacks.
function plain(text: string): string {
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}

export function Markdown(props: { text: string }) {
  const html = useMemo(() => DOMPurify.sanitize(marked.parse(props.text, { async: false }) as string), [props.text]);
  return <div className="markdown" data-testid="markdown" dangerouslySetInnerHTML={{ __html: html }} />;
}

function typeName(t: unknown): string {
  if (typeof t === "string") return t;
  if (t && typeof t === "object" && "type" in (t as any)) return String((t as any).type);
  return JSON.stringify(t);
}

export function Table(props: { bundle: { schema: { name: string; type: unknown }[]; data: unknown[][]; truncated?: boolean } }) {
  const { schema, data, truncated } = props.bundle;
  const [sort, setSort] = useState<{ col: number; asc: boolean } | null>(null);
  const rows = useMemo(() => {
    const rows = data.slice(0, 1000);
    if (!sort) return rows;
    return [...rows].sort((a, b) => {
      const x = a[sort.col] as any;
      const y = b[sort.col] as any;
      const c = x === y ? 0 : x === null ? -1 : y === null ? 1 : x < y ? -1 : 1;
      return sort.asc ? c : -c;
    });
  }, [data, sort]);
  return (
    <div className="table-output" data-testid="table-output">
      <table className="grid">
        <thead>
          <tr>
            {schema.map((f, i) => (
              <th key={i} onClick={() => setSort({ col: i, asc: sort?.col === i ? !sort.asc : true })} title={typeName(f.type)}>
                {f.name} <span className="muted">{typeName(f.type)}</span>
                {sort?.col === i ? (sort.asc ? " ▲" : " ▼") : ""}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={i}>
              {r.map((v, j) => (
                <td key={j}>{v === null ? <span className="muted">null</span> : typeof v === "object" ? JSON.stringify(v) : String(v)}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      <div className="muted">
        {rows.length} row{rows.length === 1 ? "" : "s"}
        {truncated ? " (truncated: the first 1000 rows)" : ""}
      </div>
    </div>
  );
}

function Rich(props: { data: Record<string, any> }) {
  const d = props.data;
  if (d[TABLE_MIME]) return <Table bundle={d[TABLE_MIME]} />;
  if (d["image/png"]) return <img className="image-output" data-testid="image-output" src={`data:image/png;base64,${d["image/png"]}`} />;
  if (d["image/jpeg"]) return <img className="image-output" data-testid="image-output" src={`data:image/jpeg;base64,${d["image/jpeg"]}`} />;
  if (d["image/svg+xml"])
    return <img className="image-output" data-testid="image-output" src={`data:image/svg+xml;charset=utf-8,${encodeURIComponent(String(d["image/svg+xml"]))}`} />;
  if (d["text/markdown"]) return <Markdown text={String(d["text/markdown"])} />;
  if (d["text/html"])
    // Sandboxed without allow-same-origin: the HTML cannot reach this page or its token.
    return <iframe className="html-output" data-testid="html-output" sandbox="allow-scripts" srcDoc={String(d["text/html"])} />;
  if (d["text/plain"] !== undefined) return <pre className="text-output">{String(d["text/plain"])}</pre>;
  return <pre className="text-output">{JSON.stringify(d)}</pre>;
}

export function Outputs(props: { outputs: Output[] }) {
  return (
    <div className="outputs" data-testid="outputs">
      {props.outputs.map((o, i) => {
        if (o.output_type === "stream")
          return (
            <pre key={i} className={`text-output ${o.name === "stderr" ? "stderr" : ""}`} data-testid="stream-output">
              {o.text}
            </pre>
          );
        if (o.output_type === "error")
          return (
            <div key={i} className="error-output" data-testid="error-output">
              <div className="ename">
                {o.ename}: {o.evalue}
              </div>
              <pre>{plain((o.traceback ?? []).join("\n"))}</pre>
            </div>
          );
        if (o.output_type === "kiln_error")
          return (
            <div key={i} className="error-output" data-testid="error-output">
              <div className="ename">{o.message}</div>
            </div>
          );
        return <Rich key={i} data={o.data ?? {}} />;
      })}
    </div>
  );
}
