"""The SSE replay stream: paced frames from prepared chunks, live control, lossless resume."""
