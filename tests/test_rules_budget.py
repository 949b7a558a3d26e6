"""Rule code that would exhaust the collector: refused when the file loads (`rules lint` says
so at file:line), or stopped by its judgement's budget while the run goes on (issue 16)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from clirun import measured
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from probetext import NONCE, probe_stdout
from test_rules_util import host, spec

from fleetmon.io.rawstore import save_raw
from fleetmon.model import Finding, HostSpec, RawResult, RunInfo, Severity, Status
from fleetmon.rules import evaluate, load_rules
from fleetmon.rules.budget import (
    MAX_CELLS,
    BudgetExceeded,
    Meter,
    printf_widths,
    spec_widths,
)
from fleetmon.rules.expr import ExprError, compile_expr, compile_message

CELLS = "expression exceeded its budget (more than 1,000,000 characters or items)"
OPS = "expression exceeded its budget (more than 10,000 operations)"
DIGITS = "expression exceeded its budget (a number of more than 4,300 digits)"
LONG = "expression exceeded its budget (a message longer than 4,096 characters)"
DEEP = "nested too deeply to compile (split it into simpler rules)"
INF = "a number too large (past 1.8e308, the largest float)"
BIG = "would build 1,000,000,000 characters or items (a rule judgement may build 1,000,000)"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("'x' * 10 ** 9 == ''", f"'*' {BIG}"),
        ("(10 ** 1000) ** 1000 > 0", "'**' would make a number of more than 4,300 digits"),
        ("value ** 99999 > 0", "exponent 99999 is larger than 1000"),
        ("host | center(10 ** 9)", f"center(1000000000) {BIG}"),
        ("host | indent(width=10 ** 9)", f"indent(1000000000) {BIG}"),
        ("host.center(10 ** 9)", f".center(1000000000) {BIG}"),
        ("'{:>1000000000}'.format(1)", f"'{{:>1000000000}}'.format() {BIG}"),
        ("'%01000000000d' % 1", f"'%01000000000d' {BIG}"),
        ("'%01000000000d' | format(1)", f"'%01000000000d' {BIG}"),
        ("'%*d' % (9, 1)", "'*' widths in % formats are not allowed in rules"),
        ("[1] | slice(10 ** 9) | list", f"slice(1000000000) {BIG}"),
        (
            "value | round(-10 ** 7)",
            "round(-10000000) would make a number of more than 4,300 digits",
        ),
        ("9" * 4400 + " > 1", "a number of more than 4,300 digits"),
        ("0x" + "f" * 4000 + " > 1", "a number of more than 4,300 digits"),
        # jinja2 compiled it to the name `inf`: "name 'inf' is not defined" at run time,
        # UNKNOWN (or a pass, where the fast path read the constant).
        ("(value | float) < 1e999", INF),
        ("value < -1e999", INF),
        ('time_to(fs.used_pct, 1e999, "1h") < 60', INF),
        (
            " or ".join(["value > 1"] * 2000) + " ",
            "25,997 characters: an expression or a message may have 16,384 (split the rule)",
        ),
        (
            "range(10 ** 9) | length",
            "'range()' is not available: the functions of rule expressions are the history "
            "functions (avg_over, deriv, time_to, …)",
        ),
        ("host.translate({})", "'.translate()' is not available in rule expressions"),
        ("host | random", "filter 'random' is not available in rule expressions"),
        ("host | uper", "unknown filter 'uper' (did you mean 'upper'?)"),
        ("host is evn", "unknown test 'evn' (did you mean 'even'?)"),
        ("host | _iterate(1)", "access to '_iterate' is not allowed"),
        # Python's compiler gave up on jinja2's code (SyntaxError, RecursionError: exit 70).
        ("+".join(["value"] * 300) + " > 1", DEEP),
        ("+".join(["v"] * 8_000) + " > 1", DEEP),  # 16,003 characters, under their limit
        (
            "+".join(["value"] * 20_000) + " > 1",
            "120,003 characters: an expression or a message may have 16,384 (split the rule)",
        ),
    ],
)
def test_refused_when_the_file_loads(source: str, message: str) -> None:
    with pytest.raises(ExprError) as exc:
        compile_expr(source)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
            "'{% macro %}' is not allowed in a message (use {{ }}, {% if %}, {% for %} and "
            "{% set %})",
        ),
        (
            "{% for x in [1] recursive %}{{ loop(x) }}{% endfor %}",
            "'{% for … recursive %}' is not allowed in a message",
        ),
        (
            "{% include 'x' %}",
            "'{% include %}' is not allowed in a message (use {{ }}, {% if %}, "
            "{% for %} and {% set %})",
        ),
        ("{{ host | center(10 ** 9) }}", f"center(1000000000) {BIG}"),
        ("{{ 1e999 }}", INF),
        # 50,000 `{{ host }}`: 7 s and 600 MB to compile, for a message cut at 4,096.
        (
            "{{ host }}" * 50_000,
            "500,000 characters: an expression or a message may have 16,384 (split the rule)",
        ),
        ("{{ " + " + ".join(["value"] * 300) + " }}", DEEP),
    ],
)
def test_message_statements_refused_when_the_file_loads(source: str, message: str) -> None:
    with pytest.raises(ExprError) as exc:
        compile_message(source)
    assert str(exc.value) == message


def test_rules_lint_refuses_at_file_and_line_quickly() -> None:
    path = Path(__file__).parent / "data" / "rules" / "bad" / "huge-width.yaml"
    lint = measured("rules", "lint", path)
    assert lint.returncode == 4
    assert (
        lint.stderr
        == f"fleetmon: error: {path}:8: rule 'steal': message: center(1000000000) {BIG}\n"
    )
    assert lint.cpu_s < 2.0
    assert lint.maxrss_mb < 100


#: Written so that only the host's data gives the size: they pass `rules lint`.
HOSTILE_EXPRS = [
    ("(cpu.count ** 999) ** 999 > 0", DIGITS),
    ("(('f' * 5000) | int(base=16)) > 0", DIGITS),
    ("('x' * (cpu.count * 10 ** 8)) | length > 0", CELLS),
    ("(host | center(cpu.count * 10 ** 9)) | length > 0", CELLS),
    ("host.center(cpu.count * 10 ** 9) | length > 0", CELLS),
    ("('{:>' ~ cpu.count * 10 ** 9 ~ '}').format(1) | length > 0", CELLS),
    ("('{:>{}}'.format(1, cpu.count * 10 ** 9)) | length > 0", CELLS),
    ("(('%0' ~ cpu.count * 10 ** 9 ~ 'd') % 1) | length > 0", CELLS),
    ("(('%0' ~ cpu.count * 10 ** 9 ~ 'd') | format(1)) | length > 0", CELLS),
    ("('x\\ny' | indent(cpu.count * 10 ** 9)) | length > 0", CELLS),
    # One line: no line is indented, but jinja2 builds the prefix (' ' * width) first.
    ("(host | indent(cpu.count * 10 ** 7)) | length > 0", CELLS),
    ("(('x' * 1000) | replace('x', 'y' * (cpu.count * 1000))) | length > 0", CELLS),
    ("(['x' * 1000] * (cpu.count * 1000)) | join(',') | length > 0", CELLS),
    ("(['x'] * 1000) | join('y' * (cpu.count * 1000)) | length > 0", CELLS),
    ("([1] | batch(cpu.count * 10 ** 8, 0)) | list | length > 0", CELLS),
    ("([1] | slice(cpu.count * 10 ** 8)) | list | length > 0", CELLS),
    ("(('a ' * 1000) | wordwrap(1, wrapstring='x' * (cpu.count * 1000))) | length > 0", CELLS),
    ("([[1] * 1000] * (cpu.count * 100)) | sum(start=[]) | length > 0", CELLS),
    ("cpu.busy_pct | round(cpu.count * -10 ** 7) > 0", DIGITS),
]


def _rule_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "hostile.yaml"
    path.write_text(f"- hosts: all\n  rules:\n{body}", encoding="utf-8")
    return path


def _findings(path: Path, n_hosts: int = 3) -> list[list[Finding]]:
    hosts = [host(f"h{i}", ("kvm",), {"cpu.count": 4, "cpu.busy_pct": 5.0}) for i in range(n_hosts)]
    specs = {h.name: spec(h.name, ("kvm",)) for h in hosts}
    out, _ = evaluate(load_rules([str(path)]), hosts, specs, {})
    return [list(h.findings) for h in out]


@pytest.mark.parametrize(("expr", "reason"), HOSTILE_EXPRS)
def test_hostile_expression_is_unknown_and_the_other_rules_still_run(
    tmp_path: Path, expr: str, reason: str
) -> None:
    body = (
        f"    - name: hostile\n      expr: {expr!r}\n      severity: critical\n"
        "    - name: busy\n      metric: cpu.busy_pct\n      warning: '> 1'\n"
    ).replace("\\'", "''")
    path = _rule_file(tmp_path, body)
    started = time.perf_counter()
    per_host = _findings(path)
    took = time.perf_counter() - started
    for findings in per_host:
        assert [(f.rule, f.severity, f.message) for f in findings] == [
            ("hostile", Severity.UNKNOWN, f"expr: {reason}"),
            ("busy", Severity.WARNING, "cpu.busy_pct = 5 (warning: > 1)"),
        ]
    assert took < 1.0  # three hosts, two rules each


HOSTILE_MESSAGES = [
    ("{% for a in host * 300 %}{% for b in host * 300 %}{% endfor %}{% endfor %}", OPS),
    ("{% for a in host * 99999 %}{{ loop.index }} {% endfor %}", LONG),
    ("{% set x = host * 99999 %}" + "{% set x = x ~ x %}" * 8 + "{{ x | length }}", CELLS),
    # An alias bomb built by loops: 8**8 references to the host name, compared.
    (
        "{% for a in [[host] * 8] %}"
        + "".join(
            f"{{% for {b} in [[{a}] * 8] %}}" for a, b in zip("abcdefg", "bcdefgh", strict=True)
        )
        + "{{ h == h }}"
        + "{% endfor %}" * 8,
        CELLS,
    ),
    ("{{ (groups['all'] * 1000000) | length }}", CELLS),
]


@pytest.mark.parametrize(("message", "reason"), HOSTILE_MESSAGES)
def test_hostile_message_keeps_the_alert_and_says_why(
    tmp_path: Path, message: str, reason: str
) -> None:
    body = (
        "    - name: busy\n      metric: cpu.busy_pct\n      warning: '> 1'\n"
        f"      message: {message!r}\n"
    )
    started = time.perf_counter()
    per_host = _findings(_rule_file(tmp_path, body))
    took = time.perf_counter() - started
    for findings in per_host:
        assert [(f.severity, f.message) for f in findings] == [
            (
                Severity.WARNING,
                f"cpu.busy_pct = 5 (warning: > 1) (message template failed: {reason})",
            )
        ]
    assert took < 1.0


#: What a message sees on host h0 of _findings (metric rule on cpu.busy_pct = 5.0).
CONTEXT = {
    "host": "h0",
    "value": 5.0,
    "group_names": ["kvm"],
    "groups": {"all": ["h0"], "kvm": ["h0"]},
    "labels": {},
}


@pytest.mark.parametrize(
    "message",
    [
        "{{ '%5.1f' % value }}|{{ '{:>6}'.format(value) }}|{{ [host, value] }}",
        "{{ '{0}' | format }}|{{ '%s-%s' | format(host, 1) }}|{{ '{h}'.format_map({'h': 2}) }}",
        "{{ group_names | join(', ') }} {{ host ~ '!' ~ value }} {{ host.upper() }}",
        "{% for g in group_names %}{{ loop.cycle('a', 'b') }}{{ g }}{% endfor %}",
        "{{ (host * 3) | center(9) }}|{{ host | replace('h', 'host ') }}|{{ host | indent(2) }}",
        "{{ (labels.get('x', 'none'), value | round(1), value * 2 - 1, 10 ** 20 // 3) }}",
        "{{ groups | dictsort | first }} {{ groups['all'] | map('upper') | list }}",
        "{{ value is gt 4 }} {{ 'h0' in groups['all'] }} {{ host[1:] }} {{ {host: 1}[host] }}",
        "{% set x = [1, 2] + [3] %}{% with y = x | sum %}{{ x }}{{ y }}{% endwith %}",
    ],
)
def test_ordinary_messages_render_as_jinja2_renders_them(tmp_path: Path, message: str) -> None:
    plain = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    body = (
        "    - name: busy\n      metric: cpu.busy_pct\n      warning: '> 1'\n"
        f"      message: {message!r}\n"
    )
    (findings, *_) = _findings(_rule_file(tmp_path, body), n_hosts=1)
    assert [f.message for f in findings] == [plain.from_string(message).render(CONTEXT)]


def test_an_alias_bomb_is_weighed_in_time_linear_in_its_lists() -> None:
    value: object = "x"
    for _ in range(200):
        value = [value, value]  # 2**200 strings as text; 200 lists to walk
    meter = Meter()
    started = time.perf_counter()
    with pytest.raises(BudgetExceeded) as exc:
        meter.weight(value)
    assert str(exc.value) == CELLS
    assert time.perf_counter() - started < 0.1


def test_weight_counts_shared_items_each_time() -> None:
    names = ["web01", "web02"]
    assert Meter().weight(names) == 1 + 2 + 10
    assert Meter().weight({"all": names, "kvm": names}) == 1 + 2 + 3 + 13 + 3 + 13
    assert Meter().weight([names] * 3) == 1 + 3 + 3 * 13
    meter = Meter()
    meter.take(MAX_CELLS - 5)
    with pytest.raises(BudgetExceeded):
        meter.weight(names)


@pytest.mark.parametrize(
    ("fmt", "widths"),
    [("%s", 0), ("%10s|%-5d|%.3f", 18), ("%(name)08.2f", 10), ("100%%", 0), ("%0999d", 999)],
)
def test_printf_widths(fmt: str, widths: int) -> None:
    assert printf_widths(fmt) == widths


def test_format_spec_widths() -> None:
    assert [spec_widths(s) for s in ("", ">10", "0>8,.2f", "x^30")] == [0, 10, 10, 30]


def test_every_hostile_rule_over_100_hosts_in_bounded_time_and_memory(tmp_path: Path) -> None:
    stdout = probe_stdout()
    raws = [
        RawResult(HostSpec(f"h{i:03d}", "192.0.2.1"), Status.OK, None, stdout, 0, "", 1.0, NONCE)
        for i in range(100)
    ]
    save_raw(str(tmp_path / "raw"), RunInfo("0", "2026-11-30T00:00:00Z", 1.0, "inv.yaml"), raws)
    rules = ["    - name: busy\n      metric: cpu.busy_pct\n      warning: '>= 0'\n"]
    expected = {"busy": "cpu.busy_pct"}
    for i, (expr, reason) in enumerate(HOSTILE_EXPRS):
        rules.append(f"    - name: e{i}\n      expr: {expr!r}\n      severity: critical\n")
        expected[f"e{i}"] = f"expr: {reason}"
    for i, (message, reason) in enumerate(HOSTILE_MESSAGES):
        rules.append(
            f"    - name: m{i}\n      metric: cpu.busy_pct\n      warning: '>= 0'\n"
            f"      message: {message!r}\n"
        )
        expected[f"m{i}"] = f"(message template failed: {reason})"
    path = _rule_file(tmp_path, "".join(rules).replace("\\'", "''"))
    out = tmp_path / "report.json"
    report = ("report", tmp_path / "raw", "--format", "json", "-o")
    run = measured(*report, out, "--no-default-rules", "-r", path)
    base = measured(*report, tmp_path / "base.json", "--no-rules")
    assert (run.returncode, base.returncode) == (3, 0), run.stderr
    doc = json.loads(out.read_text())
    assert len(doc["hosts"]) == 100
    for h in doc["hosts"]:
        got = {f["rule"]: f["message"] for f in h["findings"]}
        assert got.keys() == expected.keys()
        for rule, text in expected.items():
            assert text in got[rule], (rule, got[rule])
    # CPU time: the work done, whatever else the machine runs (wall time, idle: ~3 s).
    assert run.cpu_s < 5.0, f"{run.cpu_s:.1f} s (without rules {base.cpu_s:.1f} s)"
    assert run.wall_s < 30.0
    extra_mb = run.maxrss_mb - base.maxrss_mb
    assert extra_mb < 100, f"{run.maxrss_mb:.0f} MB (without rules {base.maxrss_mb:.0f} MB)"
