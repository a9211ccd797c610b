"""``python -m functions.container.healthcheck``: exit 0 if the local server's ``/healthz``
answers 200 within two seconds, else 1. The image's HEALTHCHECK and the ECS task
definition's health check both run it (the image has no curl)."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def healthy(port: int, timeout_s: float = 2.0) -> bool:
    """Whether ``/healthz`` on 127.0.0.1:``port`` answers 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timeout_s) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


if __name__ == "__main__":
    sys.exit(0 if healthy(int(os.environ.get("PORT", "8000"))) else 1)
