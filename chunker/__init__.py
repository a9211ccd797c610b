"""Raw recordings -> time-bucketed replay chunks (keyframe + per-tick deltas) in S3.

The chunker owns the chunk format (``chunker.chunk_format``), the raw-record contract
(``chunker.records``) and the reader the stream uses (``chunker.reader``).
"""
