"""Raw recordings -> time-bucketed replay chunks (keyframe + per-tick deltas) in S3.

The chunker owns the chunk format (``chunker.format.encoding``), the raw-record contract
(``chunker.format.records``) and the reader the stream uses (``chunker.format.read``).
"""
