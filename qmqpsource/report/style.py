"""The page's one style sheet: light and dark themes (prefers-color-scheme), series colours
(``s-SERIES``), run dash patterns (``r-0`` ... ``r-5``), and the two-column layout."""

from __future__ import annotations

__all__ = ["STYLE"]

_LIGHT = """
:root{--bg:#fff;--fg:#1b1f24;--muted:#5b636d;--grid:#d8dde3;--panel:#f4f6f8;--hover:#0366d61f;
--accepted:#1a7f37;--tempfail:#b36b00;--permfail:#cf222e;--error:#8250df;
--p50:#0969da;--p90:#1a7f37;--p99:#bc4c00;--max:#cf222e;
--connect:#0969da;--reply:#8250df;--total:#bf3989;--key:#1b1f24}
"""
_DARK = """
@media (prefers-color-scheme: dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9da7b3;
--grid:#30363d;--panel:#161b22;--hover:#58a6ff2e;
--accepted:#3fb950;--tempfail:#d29922;--permfail:#ff7b72;--error:#bc8cff;
--p50:#58a6ff;--p90:#3fb950;--p99:#f0883e;--max:#ff7b72;
--connect:#58a6ff;--reply:#bc8cff;--total:#f778ba;--key:#e6edf3}}
"""
_PAGE = """
body{margin:0;padding:16px 20px;background:var(--bg);color:var(--fg);
font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif}
h1{font-size:20px;margin:0 0 2px}h2{font-size:16px;margin:18px 0 6px}
h3{font-size:14px;margin:12px 0 4px}
.note{color:var(--muted);margin:4px 0}
main{display:grid;gap:20px;grid-template-columns:minmax(0,1fr)}
@media (min-width:1100px){main{grid-template-columns:minmax(0,3fr) minmax(320px,2fr)}}
figure{margin:0 0 18px;padding:10px 12px;background:var(--panel);border-radius:6px}
figcaption{font-weight:600;margin-bottom:4px}
svg.chart{width:100%;height:auto;display:block}
svg text{fill:var(--fg);font-size:12px}svg text.title{fill:var(--muted)}
.grid{stroke:var(--grid);stroke-width:1}
.line{fill:none;stroke-width:1.8;stroke-linejoin:round}
.mark{stroke:none}circle.mark.open{fill:var(--panel);stroke-width:1.5}
line.rule{stroke:var(--muted);stroke-width:1.2}.rule text{fill:var(--muted)}
.bands rect{fill:transparent}.bands rect:hover{fill:var(--hover)}
.legend{list-style:none;padding:0;margin:6px 0 0;display:flex;flex-wrap:wrap;gap:4px 16px}
.legend li{display:flex;align-items:center;gap:6px;overflow-wrap:anywhere}
table{border-collapse:collapse;margin:0 0 10px;width:100%;font-size:13px}
th,td{padding:3px 6px;border-bottom:1px solid var(--grid);text-align:left;vertical-align:top;
overflow-wrap:anywhere}
th{overflow-wrap:normal}
table.numbers td{text-align:right;font-variant-numeric:tabular-nums}
table.steps td:last-child{text-align:left}
tr.differs th,tr.differs td{font-weight:600;background:var(--hover)}
.verdicts{margin:8px 0 12px}
.verdict{margin:3px 0;padding:4px 8px;background:var(--panel);
border-left:4px solid var(--accepted);overflow-wrap:anywhere}
.verdict.failed{border-left-color:var(--permfail)}
"""
_SERIES = "".join(
    f".s-{name}{{stroke:var(--{name})}}.mark.s-{name}{{fill:var(--{name})}}"
    for name in ("accepted", "tempfail", "permfail", "error", "p50", "p90", "p99", "max",
                 "connect", "reply", "total", "key")
)
_DASHES = ".r-1{stroke-dasharray:7 4}.r-2{stroke-dasharray:2 3}.r-3{stroke-dasharray:10 3 2 3}" \
    ".r-4{stroke-dasharray:4 2}.r-5{stroke-dasharray:12 6}"

STYLE = _LIGHT + _DARK + _PAGE + _SERIES + _DASHES + "\n"
