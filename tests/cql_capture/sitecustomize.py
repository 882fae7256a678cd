"""Loaded by every Python process started with this folder on PYTHONPATH (the notebook kernels of
tests/integration/test_notebooks.py): when CLICKLIB_CQL_CAPTURE names a file, every statement a
session sends to Cassandra is appended to it, one JSON line each, before it is sent."""

import json
import os

_path = os.environ.get("CLICKLIB_CQL_CAPTURE")

if _path:
    from cassandra.cluster import Session

    _create = Session._create_response_future

    def _capturing(self, query, parameters, *args, **kwargs):
        text = getattr(query, "query_string", query)
        with open(_path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"cql": str(text), "parameters": repr(parameters)}) + "\n")
        return _create(self, query, parameters, *args, **kwargs)

    Session._create_response_future = _capturing
