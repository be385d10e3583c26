"""Connexion's request validation and handler call, prepared once per operation instead of on
every request.

Connexion 3.3 builds an operation's URI parser and parameter validator, and wraps its handler
in the parameter and response decorators, anew for every request; none of it ever changes for
an operation. No option takes an API class or an operation factory, so this module reaches
into Connexion's private parts, listed in `ovmeet.support.reaches` (checked at start; Connexion
is pinned to the version they were written against). MEET_PREPARED_OPERATIONS=false runs on
Connexion's own classes instead (tests/test_reaches.py runs the access and contract suites so).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from connexion.apps.asynchronous import AsyncApi, AsyncApp, AsyncOperation
from connexion.context import context, operation, receive, scope
from connexion.decorators import StarletteDecorator
from connexion.decorators.parameter import (
    CONTEXT_NAME,
    AsyncParameterDecorator,
    prep_kwargs,
    pythonic,
    sanitized,
    unwrap_decorators,
)
from connexion.http_facts import FORM_CONTENT_TYPES
from connexion.lifecycle import ConnexionRequest
from connexion.middleware.request_validation import (
    RequestValidationAPI,
    RequestValidationMiddleware,
    RequestValidationOperation,
)
from connexion.operations import AbstractOperation
from connexion.utils import inspect_function_arguments, is_nullable
from starlette.types import Receive, Scope, Send

from ovmeet.support.cache import LruCache
from ovmeet.web.validation import PARSED_BODY


def prepare_operations(app: AsyncApp) -> None:
    """Have `app` prepare each operation once; call it before the APIs are added."""
    app._middleware_app.api_cls = PreparedApi


class PreparedParameterDecorator(AsyncParameterDecorator):  # type: ignore[misc]
    """Connexion's handler arguments, with the JSON body the validator already parsed, no form
    parsing of a request that is no form, and each name made pythonic once. An operation whose
    parameters are string path parameters and headers gets its path parameters, body and
    context directly: that is all Connexion would pass it."""

    def __init__(self, *, framework: Any, pythonic_params: bool = False) -> None:
        super().__init__(framework=framework, pythonic_params=pythonic_params)
        self.sanitize_fn = functools.lru_cache(maxsize=1024)(
            pythonic if pythonic_params else sanitized
        )

    def __call__(self, function: Callable[..., Any]) -> Callable[..., Any]:
        # Called in the operation's first request, when Connexion's `operation` is bound.
        arguments, has_kwargs = inspect_function_arguments(unwrap_decorators(function))
        body_name = self.sanitize_fn(operation.body_name(None))  # OpenAPI 3: per operation
        wants_body = body_name in arguments
        plain_path = _plain_path(operation.parameters)
        direct = (
            all(p["in"] == "header" or p in plain_path for p in operation.parameters)
            and not has_kwargs
            and CONTEXT_NAME not in arguments
        )

        @functools.wraps(function)
        async def wrapper(request: ConnexionRequest) -> Any:
            body = request.scope.get(PARSED_BODY, request)
            if direct and (not wants_body or (body is not request and body is not None)):
                path_params = request.scope["path_params"].items()
                kwargs = {self.sanitize_fn(k): v for k, v in path_params}
                if wants_body:
                    kwargs[body_name] = body
                kwargs.update((k, v) for k, v in context.items() if k in arguments)
                return await function(**kwargs)
            if body is request:  # not a JSON body the validator read
                body = self._maybe_get_body(request, arguments=arguments, has_kwargs=has_kwargs)
                if body is not None:
                    body = await body
            is_form = request.mimetype in FORM_CONTENT_TYPES
            kwargs = prep_kwargs(
                request,
                request_body=body,
                files=await request.files() if is_form else {},
                arguments=arguments,
                has_kwargs=has_kwargs,
                sanitize=self.sanitize_fn,
            )
            return await function(**kwargs)

        return wrapper


def _plain_path(parameters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The path parameters that reach a handler as the string routed (Connexion converts
    only other types)."""
    return [
        p for p in parameters if p["in"] == "path" and p.get("schema", {}).get("type") == "string"
    ]


class PreparedDecorator(StarletteDecorator):  # type: ignore[misc]
    @property
    def _parameter_decorator_cls(self) -> type[AsyncParameterDecorator]:
        return PreparedParameterDecorator

    def __call__(self, function: Callable[..., Any]) -> Callable[..., Any]:
        prepared: tuple[Any, Callable[..., Any]] | None = None

        @functools.wraps(function)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            nonlocal prepared
            if prepared is None:  # in the first request: Connexion reads its operation then
                prepared = (self.uri_parser, self.decorate(function))
            uri_parser, decorated = prepared
            request = self.framework.get_request(
                uri_parser=uri_parser, scope=scope, receive=receive
            )
            return await decorated(request)

        return wrapper


class PreparedOperation(AsyncOperation):  # type: ignore[misc]
    @functools.cached_property
    def fn(self) -> Callable[..., Any]:
        decorator = PreparedDecorator(
            pythonic_params=self.pythonic_params, jsonifier=self.jsonifier
        )
        return decorator(self._fn)


class PreparedApi(AsyncApi):  # type: ignore[misc]
    def make_operation(self, operation: AbstractOperation) -> PreparedOperation:
        return PreparedOperation.from_operation(  # type: ignore[no-any-return]
            operation, pythonic_params=self.pythonic_params, jsonifier=self.jsonifier
        )


class PreparedValidation(RequestValidationOperation):  # type: ignore[misc]
    """Connexion's request validation (the same steps, in the same order), with what depends
    only on the operation, or on the operation and the request's Content-Type, built once."""

    @functools.cached_property
    def _uri_parser(self) -> Any:
        operation = self._operation
        return operation._uri_parser_class(operation.parameters, operation.body_definition())

    @functools.cached_property
    def _parameter_validator(self) -> Any:
        return self._validator_map["parameter"](
            self._operation.parameters,
            uri_parser=self._uri_parser,
            strict_validation=self.strict_validation,
            security_query_params=self.security_query_params,
        )

    @functools.cached_property
    def _parameters_can_fail(self) -> bool:
        return not all(parameter_cannot_fail(p) for p in self._operation.parameters)

    @functools.cached_property
    def _body_validators(self) -> LruCache[bytes | None, tuple[Any]]:
        """The body validator (None: no body check) for each Content-Type value seen lately."""
        return LruCache(32)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Without a query string (which strict validation checks for unknown names), an
        # operation whose parameters cannot fail gives Connexion's checks nothing to do.
        if self._parameters_can_fail or scope["query_string"]:
            self._parameter_validator.validate(scope)
        # ASGI header names are lower case.
        content_type = next((v for k, v in scope["headers"] if k == b"content-type"), None)
        known = self._body_validators.get(content_type)
        if known is None:
            known = (self._body_validator(content_type),)  # raises for an unsupported type
            self._body_validators.put(content_type, known)
        validator = known[0]
        if validator is not None:
            receive, scope = await validator.wrap_receive(receive, scope=scope)
        await self.next_app(scope, receive, send)

    def _body_validator(self, content_type: bytes | None) -> Any:
        headers = [(b"content-type", content_type)] if content_type is not None else []
        mime_type, encoding = self.extract_content_type(headers)
        self.validate_mime_type(mime_type)
        schema = self._operation.body_schema(mime_type)
        body_validator = self._validator_map["body"].get(mime_type) if schema else None
        if body_validator is None:  # Connexion skips what it has no validator for too
            return None
        return body_validator(
            schema=schema,
            required=self._operation.request_body.get("required", False),
            nullable=is_nullable(self._operation.body_definition(mime_type)),
            encoding=encoding,
            strict_validation=self.strict_validation,
            uri_parser=self._uri_parser,
        )


def parameter_cannot_fail(parameter: dict[str, Any]) -> bool:
    """Whether every request passes Connexion's check of `parameter`: a plain string that is
    optional, or in the path (where routing found it)."""
    optional = parameter["in"] == "path" or not parameter.get("required", False)
    return optional and parameter.get("schema") == {"type": "string"}


class PreparedValidationApi(RequestValidationAPI):  # type: ignore[misc]
    def make_operation(self, operation: AbstractOperation) -> PreparedValidation:
        return PreparedValidation(
            self.next_app,
            operation=operation,
            strict_validation=self.strict_validation,
            validator_map=self.validator_map,
        )


class PreparedValidationMiddleware(RequestValidationMiddleware):  # type: ignore[misc]
    api_cls = PreparedValidationApi
