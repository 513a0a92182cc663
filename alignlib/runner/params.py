"""Notebook parameters: read the cell tagged ``parameters`` and check overrides against it.

papermill only warns about unknown parameters and never checks types; a research tool should
refuse both, before any compute is spent.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jupytext
import yaml


class ParameterError(ValueError):
    """An override names no parameter of the notebook, or has the wrong type."""


@dataclass(frozen=True)
class NotebookParameter:
    name: str
    default: Any
    type_name: str  # from the annotation if present, else from the default's type

    def accepts(self, value: Any) -> bool:
        t = self.type_name
        if t in ("None", "NoneType", "Any", "object"):
            return True
        if value is None:
            return self.default is None or t.startswith("Optional") or "None" in t
        base = t.split("[", 1)[0].split("|", 1)[0].strip()
        if base == "bool":
            return isinstance(value, bool)
        if base == "int":
            return isinstance(value, int) and not isinstance(value, bool)
        if base == "float":
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if base == "str":
            return isinstance(value, str)
        if base in ("list", "tuple"):
            return isinstance(value, (list, tuple))
        if base == "dict":
            return isinstance(value, dict)
        return True


def _parameters_cell(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return cell.source
    raise ParameterError("notebook has no cell tagged 'parameters'")


def read_parameters(notebook_path: str | Path) -> dict[str, NotebookParameter]:
    """Parameters declared in the notebook's ``parameters`` cell (literal defaults only)."""
    path = Path(notebook_path)
    nb = jupytext.read(path)
    try:
        source = _parameters_cell(nb)
    except ParameterError as err:
        raise ParameterError(f"{path}: {err}") from None
    params: dict[str, NotebookParameter] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name, annotation, value_node = node.target.id, ast.unparse(node.annotation), node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, annotation, value_node = node.targets[0].id, None, node.value
        else:
            continue
        try:
            default = ast.literal_eval(value_node) if value_node is not None else None
        except ValueError:
            raise ParameterError(f"{path}: parameter {name!r} must have a literal default") from None
        params[name] = NotebookParameter(name, default, annotation or type(default).__name__)
    return params


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``name=value`` from the command line; the value is read as YAML (``30`` -> int, ``[M1, M2]`` -> list)."""
    if "=" not in text:
        raise ParameterError(f"expected name=value, got {text!r}")
    name, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
        try:
            value = float(value)
        except ValueError:
            pass
    return name.strip(), value


def validate_parameters(notebook: str, declared: dict[str, NotebookParameter], values: dict[str, Any]) -> None:
    """Raise :class:`ParameterError` for unknown names or values of the wrong type."""
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise ParameterError(
            f"{notebook}: unknown parameter(s) {', '.join(unknown)}; "
            f"this notebook takes: {', '.join(sorted(declared))}")
    for name, value in values.items():
        p = declared[name]
        if not p.accepts(value):
            raise ParameterError(
                f"{notebook}: parameter {name!r} expects {p.type_name} (default {p.default!r}), "
                f"got {type(value).__name__} {value!r}")
