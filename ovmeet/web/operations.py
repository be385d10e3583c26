"""Connexion's request validation and handler call, prepared once per operation instead of on
every request.

Connexion 3.3 builds an operation's URI parser and parameter validator, and wraps its handler
in the parameter and response decorators, anew for every request; none of it ever changes for
an operation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from connexion.apps.asynchronous import AsyncApi, AsyncOperation
from connexion.context import receive, scope
from connexion.decorators import StarletteDecorator
from connexion.middleware.request_validation import (
    RequestValidationAPI,
    RequestValidationMiddleware,
    RequestValidationOperation,
)
from connexion.operations import AbstractOperation
from connexion.utils import is_nullable
from starlette.types import Receive, Scope, Send


class PreparedDecorator(StarletteDecorator):  # type: ignore[misc]
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
    """Connexion's request validation (the same steps, in the same order), with the URI parser
    and the parameter validator of the operation built once."""

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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._parameter_validator.validate(scope)
        mime_type, encoding = self.extract_content_type(scope["headers"])
        self.validate_mime_type(mime_type)
        schema = self._operation.body_schema(mime_type)
        body_validator = self._validator_map["body"].get(mime_type) if schema else None
        if body_validator is not None:  # Connexion skips what it has no validator for too
            validator = body_validator(
                schema=schema,
                required=self._operation.request_body.get("required", False),
                nullable=is_nullable(self._operation.body_definition(mime_type)),
                encoding=encoding,
                strict_validation=self.strict_validation,
                uri_parser=self._uri_parser,
            )
            receive, scope = await validator.wrap_receive(receive, scope=scope)
        await self.next_app(scope, receive, send)


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
