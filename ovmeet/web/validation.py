"""Request validation: bodies that are not clean JSON text as 400 (not 500), schemas compiled
once; on the public API, invalid input as 422 with every invalid field named.

The validators are given to Connexion through its public `validator_map`, but what they change
(parsing, compiling, reporting) are private methods of Connexion's validators, listed in
`ovmeet.support.reaches` (checked at start; Connexion is pinned)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem
from connexion.json_schema import Draft4RequestValidator, Draft4ResponseValidator
from connexion.lifecycle import ConnexionRequest
from connexion.utils import is_null, is_nullable
from connexion.validators import (
    VALIDATOR_MAP,
    JSONRequestBodyValidator,
    JSONResponseBodyValidator,
    ParameterValidator,
)
from jsonschema import Draft4Validator, ValidationError
from starlette.types import Scope

from ovmeet.support.errors import UnprocessableEntity
from ovmeet.web.bodies import bounded

# Far below Python's recursion limit, which validating, storing or answering a deeper value
# would reach; far above what any operation's schema nests.
MAX_JSON_DEPTH = 64
TOO_DEEP = f"the body nests JSON deeper than {MAX_JSON_DEPTH} levels"


def depth(value: Any) -> int:
    """How deeply arrays and objects nest in `value` (a scalar is 0), without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        )
        if children is None:
            continue
        deepest = max(deepest, level)
        pending.extend((child, level + 1) for child in children)
    return deepest


# The scope key of a JSON body as the validator parsed it, for the handler's arguments.
PARSED_BODY = "ovmeet.parsed_body"


# Connexion compiles a jsonschema validator for every request and every response; an
# operation's schema never changes, so compile each once (keyed by the schema object).
_COMPILED: dict[tuple[type, int], tuple[dict[str, Any], Any]] = {}


def _compiled(kind: type, schema: dict[str, Any]) -> Any:
    cached = _COMPILED.get((kind, id(schema)))
    if cached is None or cached[0] is not schema:
        validator = kind(schema, format_checker=Draft4Validator.FORMAT_CHECKER)
        cached = _COMPILED[(kind, id(schema))] = (schema, validator)
    return cached[1]


class JSONBodyValidator(JSONRequestBodyValidator):  # type: ignore[misc]
    """Rejects bad encodings and reuses compiled schemas (the body's size is bounded where it
    arrives: `ovmeet.web.bodies`)."""

    async def _parse(self, stream: AsyncIterator[bytes], scope: Scope) -> Any:
        body = await bounded(stream)
        try:
            text = body.decode(self._encoding)
        except (UnicodeDecodeError, LookupError):
            raise BadRequestProblem(detail=f"the body is not valid {self._encoding}") from None
        if not text:
            return None
        try:
            value = json.loads(text)
            # `"\ud800"` parses into a string no UTF-8 can carry; encoding it back finds it.
            if "\\u" in text:
                json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequestProblem(detail="the body has a lone UTF-16 surrogate") from None
        except ValueError as error:
            raise BadRequestProblem(detail=f"the body is not valid JSON: {error}") from None
        except RecursionError:
            raise BadRequestProblem(detail=TOO_DEEP) from None
        if depth(value) > MAX_JSON_DEPTH:
            raise BadRequestProblem(detail=TOO_DEEP)
        scope[PARSED_BODY] = value
        return value

    @property
    def _validator(self) -> Any:
        return _compiled(Draft4RequestValidator, self._schema)


class JSONResponseValidator(JSONResponseBodyValidator):  # type: ignore[misc]
    """Reuses compiled response schemas."""

    @property
    def validator(self) -> Any:
        return _compiled(Draft4ResponseValidator, self._schema)


class FieldsBodyValidator(JSONBodyValidator):
    """A body that breaks its schema is a 422 naming each invalid field."""

    def _validate(self, body: Any) -> dict[str, Any] | None:
        if body is None:
            raise UnprocessableEntity("Invalid request body", [("", "a JSON body is required")])
        errors = sorted(self._validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        if errors:
            raise UnprocessableEntity("Invalid request body", [_detail(e) for e in errors])
        return None


class CompiledParameterValidator(ParameterValidator):  # type: ignore[misc]
    """Connexion's parameter checks, each parameter's schema compiled once (Connexion deep-
    copies the parameter and compiles a validator for every value of every request)."""

    @staticmethod
    def validate_parameter(
        parameter_type: str, value: Any, param: dict[str, Any], param_name: str | None = None
    ) -> str | None:
        if value is not None and not (is_nullable(param) and is_null(value)):
            try:
                _compiled(Draft4Validator, param.get("schema", param)).validate(value)
            except ValidationError as exception:
                return str(exception)
            return None
        return ParameterValidator.validate_parameter(  # type: ignore[no-any-return]
            parameter_type, value, param, param_name
        )


class FieldsParameterValidator(CompiledParameterValidator):
    """Parameters that break their schema, or are unknown, are a 422 naming each of them."""

    def validate_request(self, request: ConnexionRequest) -> None:
        details = [
            (name, "is not a parameter of this operation")
            for name in sorted(self.validate_query_parameter_list(request))
        ]
        places = {
            "query": request.query_params,
            "path": request.path_params,
            "header": request.headers,
        }
        for place, values in places.items():
            for parameter in self.parameters.get(place, []):
                name = parameter["name"]
                value = values.get(name)
                if value is None:
                    if parameter.get("required"):
                        details.append((name, f"the {place} parameter is required"))
                    continue
                schema = parameter.get("schema", {})
                # Connexion has converted the values it could to their schema's type.
                validator = _compiled(Draft4Validator, schema)
                details += [(name, _message(error)) for error in validator.iter_errors(value)]
        if details:
            raise UnprocessableEntity("Invalid request parameters", details)


def _detail(error: ValidationError) -> tuple[str, str]:
    path = [str(part) for part in error.absolute_path]
    if error.validator == "required":  # the missing property is the field
        missing = error.message.split("'")[1] if "'" in error.message else ""
        path.append(missing)
    return ".".join(path), _message(error)


def _message(error: ValidationError) -> str:
    """What is wrong with a value: the rule its schema states in words (`x-rule`), if any, rather
    than a regular expression or a list of alternatives."""
    if "x-rule" in error.schema:
        return str(error.schema["x-rule"])
    if error.validator == "pattern":
        return "does not have the required form"
    return str(error.message)


VALIDATORS = {
    **VALIDATOR_MAP,
    "parameter": CompiledParameterValidator,
    "body": MediaTypeDict({**VALIDATOR_MAP["body"], "*/*json": JSONBodyValidator}),
    "response": MediaTypeDict({**VALIDATOR_MAP["response"], "*/*json": JSONResponseValidator}),
}

# The public API (openvidu-meet-api.yaml) answers invalid input with 422 and field details.
FIELD_VALIDATORS = {
    **VALIDATORS,
    "parameter": FieldsParameterValidator,
    "body": MediaTypeDict({**VALIDATORS["body"], "*/*json": FieldsBodyValidator}),
}
