"""Masking secrets in job and schedule arguments and job results before the admin shows
them: ``FASTQ["ADMIN_REDACT"]``.

The setting is a list of names, compared case-insensitively, or a callable
``(name, value) -> bool`` that answers whether to mask ``value``. The names tested are a
keyword argument's, a positional argument's parameter name (when its task is registered
in this process), and every key of a dict anywhere inside the arguments or the result.
A masked value shows as :data:`MASK`, whatever it held; the strings it held (of
:data:`MIN_SCRUB` characters or more) are masked in the job's error and traceback too.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from fastq import conf, registry

MASK = "********"
# Shorter secrets are not searched for in error texts: "1" would mask every line number.
MIN_SCRUB = 4

Rule = Callable[[str, Any], bool]

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def configured_rule() -> Rule | None:
    """``FASTQ["ADMIN_REDACT"]`` as a test of (name, value), or None: mask nothing.
    Raises ImproperlyConfigured for anything but a callable or a list of names."""
    setting = conf.get("ADMIN_REDACT")
    if setting is None:
        return None
    if callable(setting):
        return setting
    if isinstance(setting, list | tuple | set | frozenset) and all(
        isinstance(name, str) for name in setting
    ):
        if not setting:
            return None
        names = frozenset(name.casefold() for name in setting)
        return lambda name, value: name.casefold() in names
    raise ImproperlyConfigured(
        'FASTQ["ADMIN_REDACT"] must be a list of argument names or a callable '
        f"(name, value) -> bool, not {setting!r}"
    )


class Redaction:
    """Masks values under ``rule`` and remembers the strings it masked (for
    :meth:`text`). One instance per job or schedule shown."""

    def __init__(self, rule: Rule | None) -> None:
        self.rule = rule
        self.secrets: set[str] = set()

    def value(self, value: Any) -> Any:
        """A copy of a JSON value with the entries of its dicts masked where the rule
        says so, at any depth."""
        if self.rule is None:
            return value
        if isinstance(value, dict):
            return {k: self._named(str(k), v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value

    def call(self, task_name: str, args: Any, kwargs: Any) -> tuple[Any, Any]:
        """(args, kwargs) of a call of ``task_name``, masked: keyword arguments by their
        names, positional ones by their parameters' names when the task is registered
        here."""
        if self.rule is None:
            return args, kwargs
        if isinstance(args, list):
            names = _positional_names(task_name, len(args))
            args = [
                self.value(v) if name is None else self._named(name, v)
                for name, v in zip(names, args, strict=True)
            ]
        else:
            args = self.value(args)
        return args, self.value(kwargs)

    def text(self, text: str) -> str:
        """``text`` with every masked string of MIN_SCRUB characters or more replaced
        (call it after masking the values it may quote)."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    def _named(self, name: str, value: Any) -> Any:
        assert self.rule is not None
        if self.rule(name, value):
            self._remember(value)
            return MASK
        return self.value(value)

    def _remember(self, value: Any) -> None:
        if isinstance(value, str):
            if len(value) >= MIN_SCRUB:
                self.secrets.add(value)
        elif isinstance(value, dict):
            for v in value.values():
                self._remember(v)
        elif isinstance(value, list):
            for v in value:
                self._remember(v)


def _positional_names(task_name: str, count: int) -> list[str | None]:
    """The parameter name each of ``count`` positional arguments binds to, None where
    unknown (the task is not registered in this process, or too many arguments)."""
    task = registry.get(task_name)
    names: list[str | None] = []
    if task is not None:
        try:
            params = list(inspect.signature(task.fn).parameters.values())
        except (TypeError, ValueError):
            params = []
        for param in params[1:] if task.bind else params:
            if param.kind in _POSITIONAL:
                names.append(param.name)
            elif param.kind is inspect.Parameter.VAR_POSITIONAL:
                names.extend([param.name] * max(count - len(names), 0))
                break
            else:
                break
    return (names + [None] * count)[:count]


def loads(text: str | None) -> tuple[bool, Any]:
    """(True, value) for JSON text, else (False, the text itself)."""
    if text is None:
        return False, None
    try:
        return True, json.loads(text)
    except ValueError:
        return False, text


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def restore(submitted: Any, stored: Any, shown: Any) -> Any:
    """``submitted`` (a form's value) with each MASK left where ``shown`` (the stored
    value as masked for display) had one replaced by ``stored``'s value there: saving a
    form shown masked keeps the secrets it did not change."""
    if isinstance(submitted, str) and submitted == MASK and shown == MASK:
        return stored
    if isinstance(submitted, dict) and isinstance(stored, dict) and isinstance(shown, dict):
        return {
            k: restore(v, stored[k], shown[k]) if k in stored and k in shown else v
            for k, v in submitted.items()
        }
    if isinstance(submitted, list) and isinstance(stored, list) and isinstance(shown, list):
        n = min(len(stored), len(shown))
        return [restore(v, stored[i], shown[i]) if i < n else v for i, v in enumerate(submitted)]
    return submitted


def shown_call(
    task_name: str, args_text: str, kwargs_text: str, redaction: Redaction | None = None
) -> tuple[str, str]:
    """The args and kwargs JSON texts of a call of ``task_name`` as the admin shows them:
    masked and indented (text that is not JSON as it is)."""
    redaction = redaction or Redaction(configured_rule())
    ok_args, args = loads(args_text)
    ok_kwargs, kwargs = loads(kwargs_text)
    args, kwargs = redaction.call(task_name, args, kwargs)
    return (dumps(args) if ok_args else args_text, dumps(kwargs) if ok_kwargs else kwargs_text)


def shown_job(job: Any) -> dict[str, str]:
    """What the admin shows of a job (a ``fastq_django.models.Job``): its args, kwargs
    and result as indented JSON, masked; its error and traceback with the masked strings
    replaced. Text that is not JSON is shown as it is."""
    redaction = Redaction(configured_rule())
    args, kwargs = shown_call(job.task, job.args, job.kwargs, redaction)
    ok_result, result = loads(job.result)
    result = redaction.value(result)
    # After the values: their masked strings are what error and traceback are cleaned of.
    return {
        "args": args,
        "kwargs": kwargs,
        "result": dumps(result) if ok_result else (job.result or "—"),
        "error": redaction.text(job.error or ""),
        "traceback": redaction.text(job.traceback or ""),
    }
