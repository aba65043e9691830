"""Print the JSON Schemas of prometheus-operator kinds, as a JSON object keyed by kind.

Runs in the tools virtualenv (``make tools``: ``.venv-tools``), which has
``cloudcoil-models-prometheus-operator``: pydantic models generated from the prometheus-operator
CRDs' OpenAPI schemas (Apache-2.0). It is kept out of the project's virtualenv because cloudcoil
registers a pytest plugin. Usage: ``.venv-tools/bin/python tests/deploy/crd_schemas.py KIND...``
"""

import json
import sys

from cloudcoil.models.prometheus_operator import v1

json.dump(
    {kind: getattr(v1, kind).model_json_schema(by_alias=True) for kind in sys.argv[1:]},
    sys.stdout,
)
