"""ovmeet: the OpenVidu Meet internal REST API v1 on LiveKit and S3."""

import warnings

# Connexion imports starlette.testclient, which warns when only httpx (not httpx2) is installed.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
