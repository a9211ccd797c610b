"""AWS clients, every one from one botocore session per process that reads its service
models with orjson.

Shared by the chunker and the HTTP functions (which import it, as they import the chunk
format). Creating a client is most of what a Lambda init spends outside imports: botocore
decodes the service model, the endpoint rules and its 1.2 MB ``endpoints.json`` with
``json.loads(object_pairs_hook=OrderedDict)``, about four times slower than orjson for the
same dicts (``python -m bench coldstart``; tests/test_aws_clients.py checks the two
decode every model a function ships to equal data).

The clients are botocore's: one made by boto3 is of the same botocore client class,
made by boto3's session on top of a botocore one, which also registers boto3's resource
and S3-transfer extensions (and imports them, ``s3transfer`` and ``multiprocessing``
with it). No function uses those, only the clients' calls, so the session here is
botocore's own, and a Lambda folder ships no boto3 (lambda_build.py): 3 % fewer
instructions in the control function's init (docs/performance.md). botocore reads
``AWS_ENDPOINT_URL``, the region and the credentials from the environment as boto3 does;
boto3 stays the SDK of the local tools (``functions.local``) and of the tests.
"""

from __future__ import annotations

import os
from typing import Any

import botocore.loaders
import botocore.session
import orjson
from botocore.config import Config


class OrjsonFileLoader(botocore.loaders.JSONFileLoader):
    """botocore's JSON model loader, decoding with orjson (plain dicts, which keep order
    as the OrderedDicts botocore asks for do); botocore's json for what orjson refuses
    (NaN). orjson would read an integer beyond 64 bits as a float: no model has one,
    which tests/test_aws_clients.py checks for every model the functions ship."""

    def _load_file(self, full_path: str, open_method: Any) -> Any:
        if not os.path.isfile(full_path):
            return None
        with open_method(full_path, "rb") as file:
            payload = file.read()
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            return super()._load_file(full_path, open_method)  # type: ignore[misc]  # not in the stubs


_session: botocore.session.Session | None = None


def _default_session() -> botocore.session.Session:
    """The process's botocore session, created with the orjson loader on first use."""
    global _session  # noqa: PLW0603  # one per process
    if _session is None:
        core = botocore.session.get_session()
        # What botocore's own loader factory does with AWS_DATA_PATH, with our file loader.
        data_path = core.get_config_variable("data_path")
        extra_paths = (
            [os.path.expanduser(os.path.expandvars(p)) for p in data_path.split(os.pathsep)]
            if data_path
            else None
        )
        loader = botocore.loaders.Loader(
            extra_search_paths=extra_paths, file_loader=OrjsonFileLoader()
        )
        core.register_component("data_loader", loader)
        _session = core
    return _session


def aws_client(service: str, config: Config | None = None) -> Any:
    """A client for ``service`` from the process's session (the caller types it)."""
    return _default_session().create_client(service, config=config)
