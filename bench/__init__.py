"""Benchmarks: each measures the product against a baseline in the same run.

Run ``python -m bench`` (all) or ``python -m bench chunker encoding ...``; results are
written as JSON under bench/results/ and quoted in docs/performance.md.
"""
