/** The operator console's style sheet, served as `/admin/app.css` (the CSP allows no inline style). */
export const ADMIN_CSS = `
:root { color-scheme: light dark; --fg: #1d1f23; --muted: #5c6370; --line: #d5d8de; --bg: #fff; --panel: #f6f7f9; --accent: #1f5fbf; --bad: #b42318; --good: #17732e; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6e8eb; --muted: #a2a9b4; --line: #3a3f47; --bg: #16181c; --panel: #1f2228; --accent: #7aa7ff; --bad: #ff8a80; --good: #7fd88f; }
}
[hidden] { display: none !important; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { display: flex; align-items: center; justify-content: space-between; gap: 1rem; padding: .8rem 1.5rem; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.25rem; margin: 0; }
main { max-width: 72rem; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
section { margin: 1.5rem 0 2.5rem; }
h2 { font-size: 1.15rem; margin: 0 0 .75rem; }
h3 { font-size: 1rem; margin: 0 0 .5rem; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: .85rem; }
pre { white-space: pre-wrap; word-break: break-all; margin: .25rem 0 0; }
form.inline { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem; }
label { font-weight: 600; }
input { font: inherit; padding: .4rem .55rem; border: 1px solid var(--line); border-radius: 4px; background: var(--bg); color: var(--fg); min-width: 16rem; }
button { font: inherit; padding: .35rem .8rem; border: 1px solid var(--line); border-radius: 4px; background: var(--panel); color: var(--fg); cursor: pointer; }
button:hover { border-color: var(--accent); }
button:focus-visible, input:focus-visible { outline: 2px solid var(--accent); outline-offset: 1px; }
button.primary { background: var(--accent); border-color: var(--accent); color: var(--bg); }
button:disabled { opacity: .6; cursor: progress; }
.message { margin: .5rem 0; }
.message:empty { margin: 0; }
caption { text-align: left; caption-side: top; padding-bottom: .25rem; }
.error { color: var(--bad); }
.note { color: var(--muted); }
.sign-in { max-width: 28rem; margin: 3rem auto; padding: 1.5rem; border: 1px solid var(--line); border-radius: 8px; background: var(--panel); }
.sign-in form { display: grid; gap: .5rem; }
.sign-in button { justify-self: start; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; margin: .75rem 0; }
th, td { text-align: left; vertical-align: top; padding: .45rem .6rem; border-bottom: 1px solid var(--line); }
th { font-size: .85rem; color: var(--muted); font-weight: 600; }
tbody tr:hover { background: var(--panel); }
td.actions { white-space: nowrap; }
td.actions button { margin: 0 .25rem .25rem 0; }
.status-enabled { color: var(--good); font-weight: 600; }
.status-disabled { color: var(--bad); font-weight: 600; }
.panel { border: 1px solid var(--line); border-radius: 6px; background: var(--panel); padding: .8rem 1rem; margin: .75rem 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; margin: .5rem 0; }
dt { font-weight: 600; }
dd { margin: 0; word-break: break-all; }
ul.plain { margin: 0; padding-left: 1.1rem; }
dialog { border: 1px solid var(--line); border-radius: 8px; padding: 1.25rem 1.5rem; max-width: 44rem; width: calc(100% - 2rem); background: var(--bg); color: var(--fg); }
dialog::backdrop { background: rgba(0, 0, 0, .45); }
dialog .secret { display: flex; align-items: center; gap: .5rem; margin: .25rem 0 .75rem; }
dialog .secret code { flex: 1; padding: .4rem .55rem; border: 1px solid var(--line); border-radius: 4px; background: var(--panel); word-break: break-all; user-select: all; }
dialog .buttons { display: flex; justify-content: flex-end; margin-top: 1rem; }
`;
