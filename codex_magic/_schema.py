"""Structured output: a cell's ``--schema NAME`` as the turn's output schema, and its check.

NAME is a pydantic model class or a JSON-schema dict in the user's namespace. The model
is asked for JSON in the API's strict mode (every object closed, every property listed
as required: optional ones stay nullable), and the answer is parsed and validated
against the schema as written: a model instance for a class, the JSON value for a dict.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]


class SchemaMismatch(ValueError):
    """The answer is not JSON, or does not validate against the schema."""


@dataclass(frozen=True)
class OutputSchema:
    """What a ``--schema`` names: the schema sent with the turn, and how an answer is checked."""

    name: str
    source: Any  # the pydantic model class, or the JSON-schema dict

    @classmethod
    def of(cls, name: str, value: Any) -> OutputSchema:
        """The schema a user's variable names; ValueError saying what is wrong if it cannot be one."""
        if isinstance(value, dict):
            _check_dict(value)
            return cls(name, value)
        if isinstance(value, type) and hasattr(value, "model_json_schema") and hasattr(value, "model_validate_json"):
            return cls(name, value)
        raise ValueError(
            f"{name} is a {type(value).__name__}: --schema takes a pydantic model class or a JSON-schema dict"
        )

    @property
    def wire(self) -> Json:
        """The schema sent as the turn's output_schema, in the strict form the API requires."""
        schema = self.source if isinstance(self.source, dict) else self.source.model_json_schema()
        return strict(schema)

    def parse(self, text: str | None) -> Any:
        """The answer as a validated object; SchemaMismatch with a one-line reason if it is not one."""
        if not text:
            raise SchemaMismatch("the turn gave no final answer")
        if isinstance(self.source, dict):
            try:
                value = json.loads(text)
            except ValueError as error:
                raise SchemaMismatch(f"the answer is not JSON ({error})") from None
            import jsonschema

            problem = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(self.source).iter_errors(value))
            if problem is not None:
                where = "/".join(str(p) for p in problem.absolute_path)
                raise SchemaMismatch(f"{where + ': ' if where else ''}{problem.message}")
            return value
        from pydantic import ValidationError

        try:
            return self.source.model_validate_json(text)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
            raise SchemaMismatch(f"{where + ': ' if where else ''}{first.get('msg')}{more}") from None


def _check_dict(schema: Json) -> None:
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.exceptions.SchemaError as error:
        raise ValueError(f"it is not a valid JSON schema: {error.message}") from None
    if schema.get("type") != "object":
        raise ValueError('the answer\'s schema must describe an object: give it "type": "object" and "properties"')


def strict(schema: Json) -> Json:
    """``schema`` as the API's strict mode takes it: objects closed, all properties required.

    A property that was optional becomes required; a default is dropped (strict mode has
    none). Pydantic's optional fields already allow null, so the model can still leave
    them empty.
    """
    result = copy.deepcopy(schema)
    _strict(result)
    return result


# Keywords whose value is a schema, a list of schemas, or a map of names to schemas.
_ONE = ("items", "not", "additionalProperties")
_MANY = ("anyOf", "oneOf", "allOf", "prefixItems")
_NAMED = ("properties", "$defs", "definitions")


def _strict(node: Any) -> None:
    if not isinstance(node, dict):
        return
    node.pop("default", None)
    properties = node.get("properties")
    if isinstance(properties, dict) and node.get("type") in (None, "object"):
        node["required"] = list(properties)
        node["additionalProperties"] = False
    for key in _ONE:
        _strict(node.get(key))
    for key in _MANY:
        for child in node.get(key) or ():
            _strict(child)
    for key in _NAMED:
        children = node.get(key)
        if isinstance(children, dict):
            for child in children.values():
                _strict(child)
