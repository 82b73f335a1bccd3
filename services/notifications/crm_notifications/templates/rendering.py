"""Jinja2 in a sandbox. Templates declare their variables; anything else is refused at save time."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from crm_notifications import catalog

LANGUAGES = ("zh-CN", "en")

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True)


@dataclass(frozen=True)
class FieldError:
    loc: list[str]
    msg: str
    type: str

    def as_dict(self) -> dict[str, Any]:
        return {"loc": self.loc, "msg": self.msg, "type": self.type}


class TemplateInvalid(ValueError):
    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__("; ".join(e.msg for e in errors))


def validate_template(subject: str, body: str, variables: list[str]) -> None:
    """Parse both parts; every variable used must be declared and every declared one must be known."""
    errors: list[FieldError] = []
    declared = set(variables)
    known = catalog.all_variables()
    for name in sorted(declared - known):
        errors.append(FieldError(["body", "variables"], f"unknown variable {name!r}: no trigger provides it", "unknown_variable"))
    for part, source in (("subject", subject), ("body", body)):
        try:
            used = meta.find_undeclared_variables(_env.parse(source))
        except TemplateSyntaxError as exc:
            errors.append(FieldError(["body", part], f"template syntax error on line {exc.lineno}: {exc.message}", "template_syntax"))
            continue
        for name in sorted(used - declared):
            errors.append(FieldError(["body", part], f"variable {name!r} is used but not declared in 'variables'", "undeclared_variable"))
    if errors:
        raise TemplateInvalid(errors)


class RenderError(RuntimeError):
    pass


@lru_cache(maxsize=512)
def _compiled(source: str):
    """Template versions are immutable, so a compiled template can be reused for every message."""
    return _env.from_string(source)


def render(source: str, context: dict[str, Any]) -> str:
    try:
        return _compiled(source).render(**context)
    except (SecurityError, Exception) as exc:  # StrictUndefined, sandbox violations, filters on bad data
        raise RenderError(f"{type(exc).__name__}: {exc}") from exc
