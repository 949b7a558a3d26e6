"""Render stage (pure): the HTML report's Jinja environment, its inlined assets, and the
render of a page that leaves no reference cycle behind (render_page).

Autoescape and StrictUndefined on, and every printed value through `_shown`: a host's
text is escaped for HTML and its unprintable characters shown as escapes.
"""

from __future__ import annotations

import base64
import functools
import hashlib

import jinja2
from markupsafe import Markup

from fleetmon.render.textfit import escape_char as _escape

_LOADER = jinja2.PackageLoader("fleetmon", "templates")


def _shown(value: object) -> object:
    """What the template prints of a value: a text's characters that are not printable
    (C0/C1 controls, bidi overrides, line separators) shown as escapes (`\\x1b`), as the
    text report shows them; a newline and a tab kept (an error's lines). Raw, a control is
    an HTML parse error and a bidi override reorders the page's text."""
    if isinstance(value, str) and not isinstance(value, Markup) and not value.isprintable():
        return "".join(c if c.isprintable() or c in "\n\t" else _escape(c) for c in value)
    return value


@functools.cache
def environment() -> jinja2.Environment:
    """The report template's environment (made once)."""
    return jinja2.Environment(
        loader=_LOADER,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_shown,
    )


def render_page(name: str, values: dict[str, object]) -> str:
    """Template `name` rendered with `values`, as Template.render does it, leaving no
    reference cycle behind.

    A template with macros (report.html.j2's) makes one at every render: its context holds
    the macros (Context.vars, exported_vars), each holding the context in its closure. The
    page's whole view model, tens of thousands of objects a render, then waited for the
    garbage collector, which `serve` runs rarely (live.LIVE_GC_THRESHOLD): its memory grew
    by tens of MB in ten minutes of scrapes. The context's names are cleared after the
    render, so that reference counts free it all at once."""
    env = environment()
    template = env.get_template(name)
    ctx = template.new_context(values)
    try:
        return env.concat(template.root_render_func(ctx))
    except Exception:
        env.handle_exception()  # the template's line in the traceback, as render() does
    finally:
        ctx.vars.clear()
        ctx.exported_vars.clear()


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@functools.cache
def assets() -> tuple[Markup, Markup, str]:
    """The style sheet, the script and the Content-Security-Policy allowing just them."""
    # The style sheet and script are inlined verbatim and allowed by hash: the page's CSP
    # then refuses any other script or style, and any request at all (default-src 'none').
    env = environment()
    css = _LOADER.get_source(env, "report.css.j2")[0].strip()
    js = _LOADER.get_source(env, "report.js.j2")[0].strip()
    csp = (
        f"default-src 'none'; style-src {_csp_hash(css)}; script-src {_csp_hash(js)}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    return Markup(css), Markup(js), csp
