"""The HTTP edge, the only package that knows Connexion, Starlette and uvicorn: the app, its
middleware, error shapes, cookie security, body checks, streaming and the front end's files. May
import every domain layer and `services`; handlers import from here, never the reverse."""

import warnings

# Connexion imports starlette.testclient, which warns when only httpx (not httpx2) is installed.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
