"""`when:`/`expr:`/`message:` run in jinja2's sandbox: escapes are refused, never executed."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_rules_util import host, spec

from fleetmon.model import Severity
from fleetmon.rules import evaluate, load_rules
from fleetmon.rules.expr import ExprError, compile_expr, compile_message

NO_FUNCTIONS = (
    "the functions of rule expressions are the history functions (avg_over, deriv, time_to, …)"
)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("''.__class__.__mro__", "access to '__class__' is not allowed"),
        ("cycler.__init__.__globals__", "access to '__init__' is not allowed"),
        ("subject.__class__", "access to '__class__' is not allowed"),
        ("subject['__class__']", "access to '__class__' is not allowed"),
        ("subject|attr('__class__')", "access to '__class__' is not allowed"),
        ("__builtins__", "access to '__builtins__' is not allowed"),
        ("lipsum.__globals__['os']", "access to '__globals__' is not allowed"),
        ("cpu.bussy_pct > 1", "unknown metric 'cpu.bussy_pct' (did you mean 'cpu.busy_pct'?)"),
        ("host.rebooot", "unknown metric 'host.rebooot' (did you mean 'host.rebooted'?)"),
        ("", "expected a non-empty expression string"),
        ("range(10) | length > 1", f"'range()' is not available: {NO_FUNCTIONS}"),
        ("namespace(a=1)", f"'namespace()' is not available: {NO_FUNCTIONS}"),
        ("groups['all'].append('x') is none", "'.append()' is not available in rule expressions"),
        ("9 ** 99999 > 1", "exponent 99999 is larger than 1000"),
    ],
)
def test_refused_when_compiled(source: str, message: str) -> None:
    with pytest.raises(ExprError) as exc:
        compile_expr(source)
    assert str(exc.value) == message


def test_refused_in_message_templates() -> None:
    with pytest.raises(ExprError) as exc:
        compile_message("{{ host.__class__.__init__ }}")
    assert str(exc.value) == "access to '__class__' is not allowed"
    with pytest.raises(ExprError) as exc:
        compile_message("{% for x in ().__class__.__base__.__subclasses__() %}{% endfor %}")
    assert str(exc.value) == "access to '__class__' is not allowed"


# Written so the loader cannot see the underscore name, or calling what the immutable
# sandbox forbids: refused when they run, and the rule becomes UNKNOWN with the reason.
@pytest.mark.parametrize(
    ("when", "reason"),
    [
        (
            "(subject|attr('_' ~ '_class__')) | string",
            "when: access to attribute '__class__' of 'str' object is unsafe.",
        ),
        (
            "subject[('_' ~ '_class__')]",
            "when: access to attribute '__class__' of 'str' object is unsafe.",
        ),
        ("cycler", "when: 'cycler' is undefined"),
        (
            "('x' * (value | int * 100000)) | length > 1",
            "when: expression exceeded its budget (more than 1,000,000 characters or items)",
        ),
        ("9 ** (value * 2000) > 1", "when: exponent 100000.0 is larger than 1000"),
        (
            "(groups['all'] | attr('app' ~ 'end'))('x') is none",
            "when: access to attribute 'append' of 'list' object is unsafe.",
        ),
        (
            "(subject | attr('trans' ~ 'late'))({}) is none",
            "when: 'translate()' is not available in rule expressions",
        ),
    ],
)
def test_refused_at_run_time_become_unknown(tmp_path: Path, when: str, reason: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "- hosts: all\n  rules:\n    - name: r\n      metric: mem.used_pct\n"
        f"      warning: '> 1'\n      when: {when!r}\n".replace("\\'", "''")
    )
    rs = load_rules([str(path)])
    h = host("h", ("all",), {"mem.used_pct": 50.0})
    out, _ = evaluate(rs, [h], {"h": spec("h")}, {})
    assert [(f.severity, f.message) for f in out[0].findings] == [(Severity.UNKNOWN, reason)]
