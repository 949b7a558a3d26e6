"""Inventory stage: templated variables rendered as Ansible renders them when connecting.

A sandboxed Jinja environment (no attribute access to internals) over one host's variables,
resolved lazily as Ansible's are: a variable made of other templated variables is rendered
in turn (a loop is an error), `!vault` values are decrypted when a template reads them,
`!unsafe` text is never rendered. The magic variables are inventory_hostname(_short),
group_names, groups, hostvars, inventory_dir, inventory_file and playbook_dir. A template
that is a single `{{ expression }}` keeps the expression's type (ansible-core 2.19 native
results). Jinja's own filters and tests work, plus the common ansible.builtin ones in
templatefilters.py and the `env` lookup; any other is an error naming it. A filter's regex
that could take exponential time (CostlyRegex) is not a render error: it ends the run. As
ansible-core reads them, backslashes in the strings of `{{ }}` are not Jinja escapes (_Lexer).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, Undefined, UndefinedError
from jinja2.lexer import TOKEN_STRING, TOKEN_VARIABLE_BEGIN, TOKEN_VARIABLE_END, Lexer
from jinja2.nativetypes import NativeCodeGenerator
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from fleetmon.inventory.regexcost import CostlyRegex
from fleetmon.inventory.resolve import Inventory
from fleetmon.inventory.templatefilters import FILTERS, TESTS
from fleetmon.inventory.values import Unsafe, Vaulted, is_template
from fleetmon.inventory.vault import Secret, VaultError, decrypt_text

_LOOKUPS = ("env", "ansible.builtin.env")


def _concat(values: Iterator[Any]) -> Any:
    """One node keeps its type ("{{ 22 }}" is 22); several are joined as text."""
    parts = list(values)
    if len(parts) == 1:
        return _defined(parts[0])
    return "".join(str(p) for p in parts)  # str() of an undefined value raises


def _defined(value: Any) -> Any:
    """The value, or the undefined error it holds (a native result is not str()'d)."""
    if isinstance(value, Undefined):
        str(value)  # StrictUndefined raises its "'x' is undefined"
    elif isinstance(value, list | tuple):
        for item in value:
            _defined(item)
    elif isinstance(value, dict):
        for item in value.values():
            _defined(item)
    return value


class _Lexer(Lexer):
    """Backslashes in the strings of `{{ }}` are kept as written, as ansible-core's
    AnsibleLexer keeps them (its _jinja_bits.py): the YAML has already read its escapes, so
    `regex_replace('(\\d+)', '\\1')` means the regex `(\\d+)` and the group `\\1` (Jinja
    alone would read `\\1` as the character U+0001). In `{% %}` they are Jinja's escapes."""

    def tokeniter(self, *args: Any, **kwargs: Any) -> Iterator[tuple[int, str, str]]:
        in_variable = False
        for lineno, kind, value in super().tokeniter(*args, **kwargs):
            if kind in (TOKEN_VARIABLE_BEGIN, TOKEN_VARIABLE_END):
                in_variable = kind == TOKEN_VARIABLE_BEGIN
            elif in_variable and kind == TOKEN_STRING:
                value = value.replace("\\", "\\\\")
            yield lineno, kind, value


class _Environment(ImmutableSandboxedEnvironment):
    code_generator_class = NativeCodeGenerator
    concat = staticmethod(_concat)  # type: ignore[assignment]

    @property
    def lexer(self) -> Lexer:
        if "_lexer" not in self.__dict__:
            self.__dict__["_lexer"] = _Lexer(self)
        lexer: Lexer = self.__dict__["_lexer"]
        return lexer


class RenderError(ValueError):
    """A value that cannot be rendered; the message says why, in Ansible's words."""


class _Variables(Mapping[str, Any]):
    """One host's variables and magic variables, each rendered on first use."""

    def __init__(self, renderer: Renderer, host: str) -> None:
        self._r = renderer
        self._host = host
        spec = renderer.inv.hosts[host]
        self._raw: dict[str, Any] = {**renderer.magic(host), **spec.vars}
        self._done: dict[str, Any] = {}
        self._busy: list[str] = []

    def __getitem__(self, key: str) -> Any:
        if key in self._done:
            return self._done[key]
        if key not in self._raw:
            if key in self._r.env.globals:
                return self._r.env.globals[key]
            raise KeyError(key)
        value = self.render(key, self._raw[key])
        self._done[key] = value
        return value

    def render(self, key: str, raw: Any) -> Any:
        """`raw` rendered as the value of `key` (a template that needs itself is a loop)."""
        if key in self._busy:
            chain = " -> ".join([*self._busy[self._busy.index(key) :], key])
            raise RenderError(f"recursive loop in templates: {chain}")
        self._busy.append(key)
        try:
            return self._r.value(self, raw)
        except CostlyRegex as e:
            if e.var is None:  # the innermost variable: the one whose template holds it
                e.host, e.var = self._host, key
            raise
        finally:
            self._busy.pop()

    def __contains__(self, key: object) -> bool:
        return key in self._raw or key in self._r.env.globals

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


class _HostVars(Mapping[str, Any]):
    """`hostvars`: every host's variables, made when first read."""

    def __init__(self, renderer: Renderer) -> None:
        self._r = renderer

    def __getitem__(self, host: str) -> Any:
        if host not in self._r.inv.hosts:
            raise KeyError(host)
        return self._r.variables(host)

    def __iter__(self) -> Iterator[str]:
        return iter(self._r.inv.hosts)

    def __len__(self) -> int:
        return len(self._r.inv.hosts)


class Renderer:
    """Renders the templated variables of an inventory's hosts (connect.Renderer)."""

    def __init__(
        self,
        inv: Inventory,
        secrets: Sequence[Secret] = (),
        playbook_dir: str = "",
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.inv = inv
        self.secrets = secrets
        self.playbook_dir = playbook_dir
        self.environ = dict(environ or {})
        self.env = _Environment(undefined=StrictUndefined, autoescape=False)
        self.env.filters.update(FILTERS)
        self.env.tests.update(TESTS)
        self.env.globals["lookup"] = self._lookup
        self.env.globals["query"] = self.env.globals["q"] = self._query
        self._hosts: dict[str, _Variables] = {}
        self._groups: dict[str, list[str]] | None = None
        self._hostvars = _HostVars(self)
        self._compiled: dict[str, Template] = {}

    def variables(self, host: str) -> _Variables:
        """The lazily rendered variables of one host."""
        if host not in self._hosts:
            self._hosts[host] = _Variables(self, host)
        return self._hosts[host]

    def magic(self, host: str) -> dict[str, Any]:
        """Ansible's magic variables of a host (VariableManager._get_magic_variables)."""
        if self._groups is None:
            self._groups = {g: self.inv.group_hosts(g) for g in self.inv.groups}
        source = os.path.abspath(self.inv.source_file(host))
        return {
            "inventory_hostname": host,
            "inventory_hostname_short": host.split(".")[0],
            "group_names": list(self.inv.hosts[host].groups),
            "groups": self._groups,
            "hostvars": self._hostvars,
            "inventory_file": source,
            "inventory_dir": os.path.dirname(source),
            "playbook_dir": self.playbook_dir,
        }

    def __call__(self, host: str, var: str, value: Any) -> Any:
        """The value of `var` for `host`, rendered; ValueError naming what failed."""
        try:
            return self.variables(host).render(var, value)
        except RenderError:
            raise
        except UndefinedError as e:
            raise RenderError(f"cannot render {value!r}: {e.message}") from None
        except TemplateError as e:
            raise RenderError(f"cannot render {value!r}: {_reason(e)}") from None
        except (TypeError, ValueError, ArithmeticError, LookupError) as e:
            raise RenderError(f"cannot render {value!r}: {type(e).__name__}: {e}") from None

    def value(self, context: _Variables, value: Any) -> Any:
        """A raw value with its templates rendered (inside lists and mappings too)."""
        if isinstance(value, Vaulted):
            try:
                return decrypt_text(value.ciphertext, self.secrets)
            except VaultError as e:
                raise RenderError(f"vault-encrypted: {e}") from None
        if isinstance(value, Unsafe):
            return str(value)
        if isinstance(value, str):
            return self._render(context, value) if is_template(value) else value
        if isinstance(value, list):
            return [self.value(context, v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(context, v) for k, v in value.items()}
        return value

    def _render(self, context: _Variables, text: str) -> Any:
        template = self._compiled.get(text)
        if template is None:  # a group's template is the same text for its every host
            template = self._compiled[text] = self.env.from_string(text)
        # The context's parent is the lazy mapping itself (jinja's `shared` context): a dict
        # copy would render every variable of the host, used or not.
        ctx = Context(self.env, context, template.name, template.blocks, template.globals)  # type: ignore[arg-type]
        # What a template gives is not rendered again, as ansible-core 2.19 does not: a value
        # that renders to `{{ ... }}` (or an environment variable that holds one) is that
        # text; variables it names are rendered when read (_Variables).
        return self.env.concat(template.root_render_func(ctx))

    def _lookup(self, name: str, *terms: Any, **options: Any) -> Any:
        values = self._query(name, *terms, **options)
        if options.get("wantlist"):
            return values
        return ",".join(str(v) for v in values)

    def _query(self, name: str, *terms: Any, **options: Any) -> list[Any]:
        if name not in _LOOKUPS:
            raise RenderError(f"lookup {name!r} is not available in fleetmon (only 'env')")
        default = options.get("default", "")
        return [self.environ.get(str(t), default) for t in terms]


def _reason(e: TemplateError) -> str:
    message = (e.message or type(e).__name__).rstrip(".")
    if message.startswith("No filter named") or message.startswith("No test named"):
        message += " (fleetmon has Jinja's and the common ansible.builtin ones)"
    return message
