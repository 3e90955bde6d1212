"""Score a script-mode model where it was trained: in the scikit-learn container's framework environment
(a model pickled by scikit-learn 1.4 does not load in this venv's newer scikit-learn)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.support.constants import SKLEARN_IMAGE_URI

SCORE = """
import json, sys
import pandas as pd
sys.path.insert(0, sys.argv[1] + "/code")
import inference
model = inference.model_fn(sys.argv[1])
frame = pd.read_json(sys.stdin, orient="split")
print(json.dumps([float(p) for p in inference.predict_fn(frame[model["features"]], model)]))
"""


def framework_python() -> str:
    """The framework environment's interpreter for the scikit-learn image (this one when switched off)."""
    from sagelake.local.framework_env import interpreter_for

    return str(interpreter_for(SKLEARN_IMAGE_URI) or sys.executable)


def score(model_dir: Path, frame: pd.DataFrame) -> list[float]:
    """Churn probabilities of the extracted model in ``model_dir`` for ``frame``, through its
    ``code/inference.py``, computed by the framework environment's Python."""
    done = subprocess.run(
        [framework_python(), "-c", SCORE, str(model_dir)],
        input=frame.to_json(orient="split"),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)
