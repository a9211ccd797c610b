"""The Lambda-facing code: the FastAPI app (control + stream), handlers, streaming bridge."""
