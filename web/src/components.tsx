import { ReactNode, useEffect, useState } from "react";
import { errorMessage } from "./api";
import { navigate } from "./router";

export function Link(props: { to: string; children: ReactNode; className?: string; testId?: string }) {
  return (
    <a
      href={props.to}
      className={props.className}
      data-testid={props.testId}
      onClick={(e) => {
        if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(props.to);
      }}
    >
      {props.children}
    </a>
  );
}

export function ErrorBox(props: { error: unknown; onClose?: () => void }) {
  if (!props.error) return null;
  return (
    <div className="error" role="alert" data-testid="error">
      {errorMessage(props.error)}
      {props.onClose && (
        <button className="link" onClick={props.onClose}>
          dismiss
        </button>
      )}
    </div>
  );
}

// Load data for a page: the value, the error (shown as Databricks' message) and a reload.
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): [T | undefined, unknown, () => void] {
  const [value, setValue] = useState<T>();
  const [error, setError] = useState<unknown>();
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (v) => live && (setValue(v), setError(undefined)),
      (e) => live && setError(e),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  return [value, error, () => setTick((t) => t + 1)];
}

// Re-run `fn` every `ms` while `active`.
export function useInterval(fn: () => void, ms: number, active = true): void {
  useEffect(() => {
    if (!active) return;
    const id = setInterval(fn, ms);
    return () => clearInterval(id);
  }, [fn, ms, active]);
}

export function StateBadge(props: { state?: string | null }) {
  const s = props.state ?? "UNKNOWN";
  return (
    <span className={`badge state-${s.toLowerCase()}`} data-testid="state">
      {s}
    </span>
  );
}

export function formatTime(ms?: number | null): string {
  if (!ms) return "";
  return new Date(ms).toLocaleString();
}

export function formatDuration(ms?: number | null): string {
  if (ms === undefined || ms === null || ms < 0) return "";
  if (ms < 1000) return `${ms} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  return `${Math.floor(s / 60)}m ${s % 60}s`;
}
