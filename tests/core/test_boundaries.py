"""The core stays framework-free (DESIGN.md section 2)."""

import subprocess
import sys


def test_core_imports_no_web_framework():
    code = (
        "import sys, ml_api.core.service, ml_api.core.schema, ml_api.core.codecs, "
        "ml_api.core.errors, ml_api.core.predictor, ml_api.core.artifact, ml_api.train, "
        "ml_api.predict\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'flask', 'django', 'rest_framework', 'werkzeug', 'gunicorn'})\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
