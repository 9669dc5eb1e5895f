// The Databricks SOURCE format: cells split by `COMMAND ----------` lines, magics as `MAGIC` lines.

export interface Cell {
  id: string;
  command: string;
  outputs: Record<string, any>[];
  status?: string;
  duration?: number;
}

const COMMENTS: Record<string, string> = { PYTHON: "#", SQL: "--", SCALA: "//", R: "#" };

let counter = 0;
export function newId(): string {
  counter += 1;
  return `c${Date.now().toString(36)}${counter}`;
}

export function parseSource(text: string, language = "PYTHON"): Cell[] {
  const c = COMMENTS[language] ?? "#";
  const header = `${c} Databricks notebook source`;
  let body = text.replace(/\r\n/g, "\n");
  if (body.startsWith(header)) body = body.slice(header.length).replace(/^\n/, "");
  const chunks = body.split(new RegExp(`\\n*^${escape(c)} COMMAND -{10}\\n*`, "m"));
  return chunks
    .map((chunk) => chunk.replace(/^\n+|\n+$/g, ""))
    .filter((chunk, i, all) => chunk !== "" || all.length === 1 || i < all.length - 1)
    .map((chunk) => ({ id: newId(), command: unmagic(chunk, c), outputs: [] }));
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

function unmagic(chunk: string, c: string): string {
  const lines = chunk.split("\n");
  const prefix = `${c} MAGIC`;
  if (lines.length && lines.every((l) => l.startsWith(prefix) || l.startsWith(`${c} DBTITLE`))) {
    return lines.map((l) => (l.startsWith(prefix) ? l.slice(prefix.length).replace(/^ /, "") : l)).join("\n");
  }
  return chunk;
}

export function renderSource(cells: Cell[], language = "PYTHON"): string {
  const c = COMMENTS[language] ?? "#";
  const parts = cells.map((cell) => {
    if (/^%\w+/.test(cell.command)) {
      return cell.command
        .split("\n")
        .map((l) => (l ? `${c} MAGIC ${l}` : `${c} MAGIC`))
        .join("\n");
    }
    return cell.command;
  });
  return `${c} Databricks notebook source\n` + parts.join(`\n\n${c} COMMAND ----------\n\n`) + "\n";
}

// What a cell sends to the cluster: (language, code), or null for a Markdown cell.
export function commandOf(command: string, notebookLanguage: string): { language: string; code: string } | null {
  const m = /^%(\w+)[^\n]*\n?/.exec(command);
  if (!m) return { language: notebookLanguage.toLowerCase() === "sql" ? "sql" : "python", code: command };
  const magic = m[1].toLowerCase();
  const rest = command.slice(m[0].length);
  const firstLine = m[0].slice(m[1].length + 1).trim();
  if (magic === "md") return null;
  if (magic === "sql") return { language: "sql", code: rest };
  if (magic === "python") return { language: "python", code: rest };
  if (magic === "pip") {
    const args = JSON.stringify(firstLine.split(/\s+/).filter(Boolean));
    return { language: "python", code: `import subprocess, sys\nsubprocess.run([sys.executable, "-m", "pip", *${args}], check=True)` };
  }
  if (magic === "sh") {
    return {
      language: "python",
      code: `import subprocess\n_r = subprocess.run(${JSON.stringify(rest || firstLine)}, shell=True, capture_output=True, text=True)\nprint(_r.stdout + _r.stderr, end="")`,
    };
  }
  return { language: "python", code: command };
}
