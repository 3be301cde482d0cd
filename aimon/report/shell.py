"""The page shell every page of the site shares: head, navigation, footer, the small
inline style sheet and the table filter (a few lines of inline JavaScript)."""

from __future__ import annotations

import datetime as dt

from aimon import __version__
from aimon.report.charts import esc
from aimon.report.data import ReportData
from aimon.report.paths import CONCERNS, INDEX, PLOTLY_JS

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1d2b3a;color:#fff;padding:.6em 1.2em}header a{color:#cde;margin-right:1em;text-decoration:none}
header a.here{color:#fff;font-weight:600}header .brand{font-weight:700;color:#fff;margin-right:1.5em}
main{max-width:1200px;margin:0 auto;padding:1em 1.2em}h1{font-size:1.5em;margin:.4em 0}h2{margin-top:1.6em}
.aimon-chart,.aimon-nochart{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:1em 0}
.aimon-chart h3,.aimon-nochart h3{margin:.2em 0;font-size:1.05em}.aimon-caption{color:#555;font-size:.92em}
.aimon-empty{font-style:italic}
.aimon-notice{background:#fff8e1;border:1px solid #f0d070;padding:.8em 1em;border-radius:6px}
table.aimon-table{border-collapse:collapse;font-size:.9em;margin:.5em 0;background:#fff}
.aimon-table th,.aimon-table td{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}
.aimon-table th{background:#f0f3f6;position:sticky;top:0}.aimon-csv{font-size:.9em}
.st-success{color:#1a7f37}.st-degraded{color:#b35900}.st-failed{color:#c62828;font-weight:600}.st-firing{color:#c62828}
.st-running,.st-provisional{color:#6a5acd}
.aimon-filters{margin:.6em 0}.aimon-filters select,.aimon-filters input{margin-right:.6em}
footer{color:#777;font-size:.85em;padding:1em 1.2em;max-width:1200px;margin:0 auto}
"""

# Filters any table with data-filter="on": a select per column marked data-filter-col,
# and a free-text box. Rows are hidden, never removed, so the CSV keeps every row.
FILTER_JS = """
document.querySelectorAll('[data-filter-for]').forEach(function(box){
  var t=document.getElementById(box.getAttribute('data-filter-for'));if(!t)return;
  var rows=Array.prototype.slice.call(t.tBodies[0].rows);
  function apply(){var sel=box.querySelectorAll('select'),txt=(box.querySelector('input')||{}).value||'';
    txt=txt.toLowerCase();var shown=0;
    rows.forEach(function(r){var ok=true;sel.forEach(function(s){var c=+s.getAttribute('data-col');
      if(s.value&&r.cells[c].textContent.trim()!==s.value)ok=false;});
      if(txt&&r.textContent.toLowerCase().indexOf(txt)<0)ok=false;r.style.display=ok?'':'none';shown+=ok;});
    var n=box.querySelector('.aimon-count');if(n)n.textContent=shown+' of '+rows.length+' rows';}
  box.querySelectorAll('select').forEach(function(s){var c=+s.getAttribute('data-col'),seen={};
    rows.forEach(function(r){seen[r.cells[c].textContent.trim()]=1;});
    Object.keys(seen).sort().forEach(function(v){
      var o=document.createElement('option');o.value=v;o.textContent=v;s.appendChild(o);});
    s.addEventListener('change',apply);});
  var i=box.querySelector('input');if(i)i.addEventListener('input',apply);apply();});
document.querySelectorAll('details[data-csv-table]').forEach(function(d){
  d.addEventListener('toggle',function(){if(!d.open||d.querySelector('table'))return;
    var a=document.getElementById(d.getAttribute('data-csv-table'));
    var text=new TextDecoder().decode(Uint8Array.from(atob(a.href.split(',')[1]),function(c){return c.charCodeAt(0);}));
    var t=document.createElement('table');t.className='aimon-table';
    text.trim().split('\\n').forEach(function(line,i){var r=t.insertRow();
      (line.match(/("([^"]|"")*"|[^,]*)(,|$)/g)||[]).slice(0,-1).forEach(function(f){
        var c=document.createElement(i?'td':'th');f=f.replace(/,$/,'');
        if(f[0]==='"')f=f.slice(1,-1).replace(/""/g,'"');c.textContent=f;r.appendChild(c);});});
    d.appendChild(t);});});
"""


def page(
    data: ReportData,
    title: str,
    body: str,
    *,
    here: str,
    depth: int = 0,
    charts: bool = True,
    filters: bool = False,
) -> str:
    """A whole page. `depth`: folders below the site root (1 for windows/), for the
    relative links; `charts`: whether to load the plotting library."""
    up = "../" * depth
    nav = [f'<a class="brand" href="{up}{INDEX}">aimon report</a>']
    for name, text in {INDEX: "Overview", **CONCERNS}.items():
        cls = ' class="here"' if name == here else ""
        nav.append(f'<a{cls} href="{up}{name}">{esc(text)}</a>')
    script = f'<script src="{up}{PLOTLY_JS}" charset="utf-8"></script>' if charts else ""
    built = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    foot = (
        f"built {built} by aimon {esc(__version__)} from {esc(data.where)}, {esc(data.granularity)} windows, "
        f"{esc(data.range_text)}; figures from the metrics, runs and alert tables only"
    )
    tail = f"<script>{FILTER_JS}</script>" if filters else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · aimon</title><style>{CSS}</style>{script}</head>"
        f"<body><header>{''.join(nav)}</header><main><h1>{esc(title)}</h1>{body}</main>"
        f"<footer>{foot}</footer>{tail}</body></html>"
    )


def notice(text: str) -> str:
    return f'<p class="aimon-notice">{esc(text)}</p>'


def filter_box(table_id: str, columns: dict[int, str]) -> str:
    """Filters for the table `table_id`: a select per column index (label) and a text box."""
    sel = "".join(
        f'<label>{esc(label)} <select data-col="{i}"><option value="">all</option></select></label>'
        for i, label in columns.items()
    )
    return (
        f'<div class="aimon-filters" data-filter-for="{esc(table_id)}">{sel}'
        '<label>text <input type="search" placeholder="filter rows"></label> <span class="aimon-count"></span></div>'
    )
