"""The OpenAPI document of the API (docs/openapi.yaml) as the tests use it.

``load_document`` reads and validates it; ``for_case`` rewrites it for a camel-case server (the
schemas marked ``x-abaco-case`` in the document); ``Contract`` validates a real response against
the document's schema for its path, method and status, in strict mode: every documented object is
closed (``additionalProperties: false`` unless the document says otherwise), so a field the server
returns and the document does not describe fails the test as surely as a missing one.
"""
from __future__ import annotations

import copy
import urllib.parse
from pathlib import Path
from typing import Any

import requests
import yaml
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT_PATH = ROOT / "docs" / "openapi.yaml"
DOCUMENT_URI = "urn:abaco:openapi"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def load_document(path: Path = DOCUMENT_PATH) -> dict:
    """The document, checked against the OpenAPI 3.0 specification (raises if it is not valid)."""
    document = yaml.safe_load(path.read_text())
    validate_spec(document)
    slips = list(flow_mapping_slips(document))
    assert not slips, f"an unquoted comma in a YAML flow mapping split a value into keys: {slips}"
    return document


def flow_mapping_slips(node: Any, where: str = "") -> Any:
    """Keys with a space and no value: what ``{description: a, b}`` makes of an unquoted comma."""
    if isinstance(node, dict):
        for key, value in node.items():
            if value is None and " " in str(key):
                yield f"{where}/{key}"
            yield from flow_mapping_slips(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from flow_mapping_slips(value, f"{where}/{i}")


def to_camel(name: str) -> str:
    """The server's conversion (actors/responses.py): ``a_b_c`` -> ``aBC``; ``_links`` stays."""
    if name.startswith("_"):
        return name
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def for_case(document: dict, case: str) -> dict:
    """The document as a server in ``case`` speaks it. In camel case the schemas marked
    ``x-abaco-case`` get camelCase property names; ``model`` objects also omit null values, so their
    nullable properties are no longer required."""
    if case != "camel":
        return document
    document = copy.deepcopy(document)
    for schema in document["components"]["schemas"].values():
        mode = schema.get("x-abaco-case")
        if not mode:
            continue
        properties = schema.get("properties", {})
        nullable = {name for name, prop in properties.items() if prop.get("nullable")}
        required = [n for n in schema.get("required", []) if not (mode == "model" and n in nullable)]
        schema["properties"] = {to_camel(n): p for n, p in properties.items()}
        if "required" in schema:
            schema["required"] = [to_camel(n) for n in required]
        if isinstance(schema.get("example"), dict):
            schema["example"] = {to_camel(k): v for k, v in schema["example"].items()}
    return document


def closed(document: dict) -> dict:
    """A copy where every schema with ``properties`` and no ``additionalProperties`` is closed."""
    document = copy.deepcopy(document)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("properties"), dict) and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document["components"])
    walk(document["paths"])
    return document


def pointer(*parts: str) -> str:
    """A JSON pointer to ``parts``, escaped and URI-quoted for a ``$ref``."""
    escaped = (p.replace("~", "~0").replace("/", "~1") for p in parts)
    return "#/" + "/".join(urllib.parse.quote(p, safe="") for p in escaped)


class Contract:
    """Validates real responses against the document, for one case mode."""

    def __init__(self, document: dict):
        self.document = document
        self.strict = closed(document)
        resource = Resource(contents=self.strict, specification=DRAFT4)
        self.registry = Registry().with_resource(DOCUMENT_URI, resource)
        self.checked: set[tuple[str, str, str]] = set()

    def resolve(self, node: dict) -> tuple[dict, str | None]:
        """Follow a local ``$ref`` of a response object; returns (object, its pointer or None)."""
        ref = node.get("$ref")
        if ref is None:
            return node, None
        assert ref.startswith("#/"), ref
        target: Any = self.document
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        return target, ref

    def check(self, response: requests.Response, template: str, method: str) -> Any:
        """Validate ``response`` against ``method template`` of the document; return its JSON body
        (or its bytes for a non-JSON response)."""
        method = method.lower()
        path_item = self.document["paths"].get(template)
        assert path_item is not None, f"{template} is not in the document"
        operation = path_item.get(method)
        if operation is None:
            # a method no route serves: documented once, as the 405 response
            assert response.status_code == 405, f"{method} {template} is not documented: {response.status_code}"
            return self.check_component(response, "MethodNotAllowed")
        status = str(response.status_code)
        responses = operation["responses"]
        assert status in responses, (
            f"{method.upper()} {template} answered {status}, which the document does not list "
            f"({', '.join(responses)}): {response.text[:500]}"
        )
        obj, ref = self.resolve(responses[status])
        base = ref or pointer("paths", template, method, "responses", status)
        self.checked.add((template, method, status))
        return self.check_content(response, obj, base)

    def check_component(self, response: requests.Response, name: str) -> Any:
        obj, ref = self.resolve({"$ref": f"#/components/responses/{name}"})
        return self.check_content(response, obj, ref)

    def check_content(self, response: requests.Response, obj: dict, base: str) -> Any:
        content = obj.get("content", {})
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        assert media_type in content, (
            f"answered {media_type!r}, the document says {', '.join(content) or 'no content'}"
        )
        if media_type != "application/json":
            return response.content
        body = response.json()
        self.validate(body, f"{base}/content/{urllib.parse.quote('application~1json', safe='')}/schema")
        return body

    def validate(self, instance: Any, schema_pointer: str) -> None:
        validator = OAS30Validator(
            {"$ref": DOCUMENT_URI + schema_pointer}, registry=self.registry, format_checker=oas30_format_checker
        )
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        assert not errors, "the response does not match the document:\n" + "\n".join(
            f"- at {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:300]}" for e in errors
        )

    def validate_schema(self, instance: Any, name: str) -> None:
        """Validate ``instance`` against ``#/components/schemas/<name>`` (strict)."""
        self.validate(instance, pointer("components", "schemas", name))
