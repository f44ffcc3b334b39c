"""Jinja2 templates of the dossier: HTML (autoescaped) and Markdown (user text escaped by a filter)."""

from __future__ import annotations

import re
from typing import Any

import jinja2
from markupsafe import Markup, escape

FORMATS = ("html", "md")

_HTML = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}: {{ model }} {{ version }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #1d2433; line-height: 1.4; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 2px solid #d0d7e2; padding-bottom: .2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .88rem; }
th, td { border: 1px solid #d0d7e2; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #eef2f8; } caption { text-align: left; font-weight: 600; padding: .3rem 0; }
td.v { word-break: break-all; max-width: 32rem; }
sup.cite { color: #5a6b87; font-size: .7rem; white-space: nowrap; }
.head { background: #f4f7fb; border: 1px solid #d0d7e2; padding: .6rem 1rem; font-size: .85rem; word-break: break-all; }
.agree { font-weight: 600; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p><strong>{{ model }}</strong> version <strong>{{ version }}</strong> · generated {{ generated_at }}
 by {{ generated_by }}
 with govern {{ govern_version }} · <span class="agree">{{ recompute_line }}</span></p>
<div class="head" id="signed-head">
<strong>Signed head of the decision log.</strong> Every figure below cites the audit event it comes from
[seq · hash]; the log up to seq {{ head.seq }} hashes to <code>{{ head.hash }}</code>, signed by this installation's
key <code>{{ head.public_key }}</code>: signature <code>{{ head.signature }}</code>.
Check it offline: <code>govern audit verify EXPORT --key KEY --report {{ report_name }}</code>.
</div>
{% for section in sections %}
<section id="{{ section.id }}">
<h2>{{ section.heading }}</h2>
{% for block in section.blocks %}
{% if block.type == "text" %}<p>{{ block.text }}</p>
{% elif block.type == "chart" %}<figure><img src="{{ block.data_uri }}" alt="{{ block.caption }}">
<figcaption>{{ block.caption }} {{ cell(block.figure) }}</figcaption></figure>
{% elif block.type == "facts" %}<table>
{% for label, fig in block.rows %}<tr><th>{{ label }}</th><td class="v">{{ cell(fig) }}</td></tr>
{% endfor %}</table>
{% else %}<table><caption>{{ block.caption }}</caption>
<tr>{% for column in block.columns %}<th>{{ column }}</th>{% endfor %}</tr>
{% for row in block.rows %}<tr>{% for fig in row %}<td class="v">{{ cell(fig) }}</td>{% endfor %}</tr>
{% endfor %}</table>
{% endif %}
{% endfor %}
</section>
{% endfor %}
<section id="citations">
<h2>Cited audit events</h2>
<table><tr><th>seq</th><th>hash</th><th>time</th><th>actor</th><th>action</th><th>entity</th></tr>
{% for e in citations %}<tr id="seq-{{ e.seq }}"><td>{{ e.seq }}</td><td class="v"><code>{{ e.hash }}</code></td>
<td>{{ e.ts }}</td>
<td>{{ e.actor or "—" }}</td><td>{{ e.action }}</td><td>{{ e.entity }}</td></tr>
{% endfor %}</table>
</section>
</body>
</html>
"""

_MD = r"""# {{ title }}

**{{ model|md }}** version **{{ version|md }}** · generated {{ generated_at }} by {{ generated_by|md }}
with govern {{ govern_version }} · **{{ recompute_line|md }}**

> **Signed head of the decision log.** Every figure below cites the audit event it comes from [seq · hash];
> the log up to seq {{ head.seq }} hashes to `{{ head.hash }}`,
> signed by this installation's key `{{ head.public_key }}`:
> signature `{{ head.signature }}`.
> Check it offline: `govern audit verify EXPORT --key KEY --report {{ report_name }}`.
{% for section in sections %}

## {{ section.heading }}
{% for block in section.blocks %}

{% if block.type == "text" %}
{{ block.text|md }}
{% elif block.type == "chart" %}
![{{ block.caption|md }}]({{ block.file }})

*{{ block.caption|md }}* {{ cell(block.figure) }}
{% elif block.type == "facts" %}
| | |
|---|---|
{% for label, fig in block.rows %}
| {{ label|md }} | {{ cell(fig) }} |
{% endfor %}
{% else %}
**{{ block.caption|md }}**

|{% for column in block.columns %} {{ column|md }} |{% endfor %}

|{% for column in block.columns %}---|{% endfor %}

{% for row in block.rows %}
|{% for fig in row %} {{ cell(fig) }} |{% endfor %}

{% endfor %}
{% endif %}
{% endfor %}
{% endfor %}

## Cited audit events

| seq | hash | time | actor | action | entity |
|---|---|---|---|---|---|
{% for e in citations %}
| {{ e.seq }} | `{{ e.hash }}` | {{ e.ts }} | {{ (e.actor or "—")|md }} | {{ e.action|md }} | {{ e.entity|md }} |
{% endfor %}
"""


def _md(value: Any) -> str:
    """Markdown-safe text: no HTML, no table breaks, no emphasis or links from a user's words."""
    text = str(value).replace("\r", " ").replace("\n", " ")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]|#])", r"\\\1", text)


def require_pdf() -> None:
    """InvalidInput saying what to install when WeasyPrint (PDF output) is missing."""
    import importlib

    from governance.errors import InvalidInput
    try:
        importlib.import_module("weasyprint")
    except (ImportError, OSError) as exc:  # OSError: the Pango library WeasyPrint needs is missing
        raise InvalidInput("PDF output needs WeasyPrint, which is not installed here (pip install 'govern[pdf]'); "
                           f"html and md always work ({str(exc)[:120]}).") from exc


def pdf(html: str) -> bytes:
    """The HTML document as PDF (WeasyPrint), fetching nothing but its own embedded charts (data: URLs)."""
    import weasyprint

    fetcher: Any
    try:
        from weasyprint.urls import URLFetcher  # WeasyPrint 66 and later
        fetcher = URLFetcher(allowed_protocols=("data",))
    except ImportError:
        def fetcher(url: str, *args: Any, **kwargs: Any) -> Any:
            if url.startswith("data:image/png;base64,"):
                return weasyprint.default_url_fetcher(url)
            raise ValueError(f"the dossier fetches nothing ({url[:80]})")

    return bytes(weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf())


def render(fmt: str, context: dict[str, Any]) -> str:
    """The document in `fmt` (html or md) from the dossier's context."""
    if fmt == "html":
        env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)

        def cell(fig: dict[str, Any]) -> Any:
            value = escape(fig.get("text", ""))
            if "seq" in fig:
                value += Markup('<sup class="cite"><a href="#seq-{0}">[{0} · {1}…]</a></sup>').format(
                    fig["seq"], fig["hash"][:8])
            return value

        template = env.from_string(_HTML)
    else:
        env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                 trim_blocks=True, lstrip_blocks=True)
        env.filters["md"] = _md

        def cell(fig: dict[str, Any]) -> Any:
            value = _md(fig.get("text", ""))
            return value + (f" [{fig['seq']} · {fig['hash'][:8]}…]" if "seq" in fig else "")

        template = env.from_string(_MD)
    return template.render(**context, cell=cell)
