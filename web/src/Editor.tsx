import { useEffect, useRef } from "react";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { markdown } from "@codemirror/lang-markdown";
import { python } from "@codemirror/lang-python";
import { sql } from "@codemirror/lang-sql";
import { defaultHighlightStyle, syntaxHighlighting, bracketMatching } from "@codemirror/language";
import { Compartment, EditorState } from "@codemirror/state";
import { EditorView, keymap, lineNumbers } from "@codemirror/view";

export function languageOf(code: string, fallback = "python"): string {
  const m = /^%(\w+)/.exec(code);
  if (!m) return fallback;
  const magic = m[1].toLowerCase();
  if (magic === "md") return "markdown";
  return magic;
}

function extensionFor(lang: string) {
  if (lang === "sql") return sql();
  if (lang === "markdown") return markdown();
  return python();
}

export interface EditorKeys {
  onRun: (advance: boolean) => void;
  onEscape: () => void;
  onFocus: () => void;
}

// One cell's CodeMirror editor; the language follows the cell's magic line.
export function CodeEditor(props: { value: string; onChange: (v: string) => void; keys: EditorKeys; autoFocus?: boolean }) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView>();
  const lang = useRef(new Compartment());
  const keysRef = useRef(props.keys);
  keysRef.current = props.keys;
  const changeRef = useRef(props.onChange);
  changeRef.current = props.onChange;

  useEffect(() => {
    const current = languageOf(props.value);
    const state = EditorState.create({
      doc: props.value,
      extensions: [
        lineNumbers(),
        history(),
        bracketMatching(),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        lang.current.of(extensionFor(current)),
        keymap.of([
          { key: "Shift-Enter", run: () => (keysRef.current.onRun(true), true) },
          { key: "Mod-Enter", run: () => (keysRef.current.onRun(false), true) },
          { key: "Escape", run: (v) => (v.contentDOM.blur(), keysRef.current.onEscape(), true) },
          indentWithTab,
          ...defaultKeymap,
          ...historyKeymap,
        ]),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) {
            const text = u.state.doc.toString();
            changeRef.current(text);
            const next = languageOf(text);
            if (next !== languageOf(u.startState.doc.toString())) {
              u.view.dispatch({ effects: lang.current.reconfigure(extensionFor(next)) });
            }
          }
          if (u.focusChanged && u.view.hasFocus) keysRef.current.onFocus();
        }),
      ],
    });
    view.current = new EditorView({ state, parent: host.current! });
    if (props.autoFocus) view.current.focus();
    return () => view.current?.destroy();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  // Outside changes (a restored revision) replace the text.
  useEffect(() => {
    const v = view.current;
    if (v && v.state.doc.toString() !== props.value) {
      v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: props.value } });
    }
  }, [props.value]);

  return <div className="cm-host" ref={host} data-testid="cell-editor" />;
}
