"""One module per spec tag, one function per operationId: parse, call the domain, shape."""
