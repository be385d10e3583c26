"""Connexion's handler call, prepared once per operation instead of on every request.

Connexion 3.3 wraps each handler in its parameter and response decorators, and builds the URI
parser of its operation, anew for every request; the result never changes for an operation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from connexion.apps.asynchronous import AsyncApi, AsyncOperation
from connexion.context import receive, scope
from connexion.decorators import StarletteDecorator
from connexion.operations import AbstractOperation


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
