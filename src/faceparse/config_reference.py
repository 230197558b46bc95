"""The configuration reference of the docs, generated from the config schema.

The schema (``workflow/schemas/config.schema.yaml``) is the one place a key's type, default,
allowed values and description live: the docs site's hook (``docs/hooks/config_reference.py``)
turns it into the reference table when the site is built, so a key cannot be left out of the
docs or documented differently from how it is checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["SCHEMA", "Key", "keys", "load_schema", "reference_markdown"]

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"

# How a key of a free-form mapping (a model's or an ensemble's name) is written in a path.
_NAME = "<name>"
_KEY = "<key>"
_JSON_TYPES = {type(None): "null", str: "string", int: "integer", float: "number", bool: "boolean"}


@dataclass(frozen=True)
class Key:
    """One documented config key: its dotted path and what the schema says of it."""

    path: str
    type: str
    default: str
    allowed: str
    description: str
    required: bool


def load_schema(path: Path = SCHEMA) -> dict:
    return yaml.safe_load(path.read_text())


def _type(node: Mapping) -> str:
    if "type" in node:
        types = node["type"] if isinstance(node["type"], list) else [node["type"]]
        return " or ".join(types)
    if "enum" in node:
        return " or ".join(sorted({_JSON_TYPES[type(v)] for v in node["enum"]}))
    return "any"


def _literal(value: Any) -> str:
    return f"`{json.dumps(value)}`"


def _allowed(node: Mapping) -> str:
    parts = []
    if "enum" in node:
        parts.append(", ".join(_literal(v) for v in node["enum"]))
    bounds = (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
    )
    parts += [f"{sign} {node[name]}" for name, sign in bounds if name in node]
    if "minLength" in node:
        parts.append(f"at least {node['minLength']} characters")
    if "pattern" in node:
        parts.append(f"matches `{node['pattern']}`")
    if "not" in node and "pattern" in node["not"]:
        parts.append(f"does not match `{node['not']['pattern']}`")
    items = node.get("items")
    if isinstance(items, Mapping):
        item = _allowed(items)
        parts.append(f"items: {_type(items)}" + (f" {item}" if item else ""))
    if "minItems" in node:
        parts.append(f"at least {node['minItems']} item(s)")
    if node.get("uniqueItems"):
        parts.append("no repeats")
    if "minProperties" in node:
        parts.append(f"at least {node['minProperties']} entry")
    names = node.get("propertyNames", {}).get("pattern")
    if names:
        parts.append(f"names match `{names}`")
    return "; ".join(parts)


def keys(schema: Mapping, prefix: str = "") -> Iterator[Key]:
    """Every key the schema allows, depth first in the schema's order (mappings of free-form
    names appear once, as ``<name>``)."""
    required = set(schema.get("required", []))
    for name, node in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        yield Key(
            path=path,
            type=_type(node),
            default=_literal(node["default"]) if "default" in node else "",
            allowed=_allowed(node),
            description=" ".join(str(node.get("description", "")).split()),
            required=name in required,
        )
        yield from keys(node, f"{path}.")
        extra = node.get("additionalProperties")
        if isinstance(extra, Mapping):
            if extra.get("properties"):
                entry = " ".join(str(extra.get("description", "")).split())
                yield Key(f"{path}.{_NAME}", _type(extra), "", "", entry, False)
                yield from keys(extra, f"{path}.{_NAME}.")
            else:
                yield Key(f"{path}.{_KEY}", _type(extra), "", _allowed(extra), "", False)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def reference_markdown(schema: Mapping | None = None) -> str:
    """The reference table (Markdown), one row per key."""
    schema = load_schema() if schema is None else schema
    lines = [
        "| key | type | default | allowed | description |",
        "|---|---|---|---|---|",
    ]
    for key in keys(schema):
        description = key.description + (" **Required.**" if key.required else "")
        cells = (f"`{key.path}`", key.type, key.default, key.allowed, description)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"
