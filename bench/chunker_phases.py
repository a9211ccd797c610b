"""Where the chunker's CPU goes, phase by phase, for a whole day against moto's server.

    python -m bench.chunker_phases

A one-off breakdown behind docs/performance.md ("Columnar positions"): the default
synthetic day chunked hour by hour as ``DayJob.run_hour`` does it (columnar path), with
this process's CPU time taken around each phase — reading and validating (``_owned``,
the prior state for the first hour), building (``build_hour_columns``), ``orjson.dumps``
of the documents, zstd, and botocore's ``put_object`` (moto's server is another process).
"""

from __future__ import annotations

import json
import os
import time

import orjson
import zstandard

from chunker.batch.build import build_hour_columns
from chunker.batch.run import DayJob
from chunker.format.encoding import ZSTD_LEVEL, ChunkerConfig
from chunker.format.s3 import s3_client
from functions.local.stack import moto_server
from synthetic import GeneratorSettings, generate_day, write_day

BUCKET = "bench-phases"


def main() -> None:
    day = generate_day(GeneratorSettings())
    cpu = time.process_time
    phases = dict.fromkeys(("read_validate", "build", "orjson", "zstd", "put"), 0.0)
    raw_bytes = 0
    with moto_server() as server:
        os.environ.update(server.environment)
        s3 = s3_client()
        s3.create_bucket(Bucket=BUCKET)
        write_day(day, lambda key, body: s3.put_object(Bucket=BUCKET, Key=key, Body=body))
        job = DayJob.open(s3, BUCKET, day.keys.airport, day.keys.service_date, ChunkerConfig())
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True)
        started = cpu()
        state = None
        for hour in range(job.day.hours):
            mark = cpu()
            state = job.prior_state(hour) if state is None else state
            rows, positions, *_ = job._owned(hour)
            phases["read_validate"] += cpu() - mark
            mark = cpu()
            assert positions is not None
            built = build_hour_columns(
                job.keys.airport, job.day, hour, job.config, state, rows, positions
            )
            phases["build"] += cpu() - mark
            for chunk in built.chunks:
                mark = cpu()
                raw = orjson.dumps(chunk.document)
                phases["orjson"] += cpu() - mark
                raw_bytes += len(raw)
                mark = cpu()
                body = compressor.compress(raw)
                phases["zstd"] += cpu() - mark
                mark = cpu()
                s3.put_object(Bucket=BUCKET, Key=f"phases/{chunk.start}", Body=body)
                phases["put"] += cpu() - mark
        total = cpu() - started
    print(
        json.dumps(
            {
                "cpu_s": {name: round(seconds, 2) for name, seconds in phases.items()},
                "total_cpu_s": round(total, 2),
                "chunk_json_bytes": raw_bytes,
                "chunks": job.day.hours * 3_600_000 // job.config.bucket_ms,
                "load_average_1m": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
