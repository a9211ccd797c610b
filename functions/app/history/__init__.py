"""History queries over published chunks, and their routes."""
