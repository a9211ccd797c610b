"""Imports of foreign formats into the raw contract (``chunker.format.records``).

Each importer reads something the dispatch system did not write — an OpenStreetMap
extract today, CSV/GPX/ADS-B track exports later — and writes the same raw contract the
chunker reads, so the chunker keeps one input path. They run on a laptop only
(``dispatch-replay import-*``): ``lambda_build.LAPTOP_ONLY`` keeps this package out of
every Lambda artifact.
"""
