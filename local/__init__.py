"""Dev tooling, never deployed: the local stack, the sandboxes, the demo and the benchmark.

The hub's shared code lives in ``layers/hub`` (a Lambda layer in AWS); the local tools import it from there.
"""

import sys
from pathlib import Path

_LAYERS = str(Path(__file__).resolve().parent.parent / "layers")
if _LAYERS not in sys.path:
    sys.path.insert(0, _LAYERS)
