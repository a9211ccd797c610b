"""The streaming bridge: the FastAPI app behind a Lambda Function URL with response streaming.

See docs/streaming.md for why this exists and how it works.
"""
