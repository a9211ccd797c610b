"""The control API: replay sessions (routes, request models, operations)."""
