"""The Python half of scripts/check-keras-applications.mjs: saves keras.applications' ResNet50
and ResNet50V2 (weights=None: random weights, batch norms given random statistics) and the
full-width keras.io CIFAR ResNet-20 v1 / v2 as .keras and .h5 in OUT_DIR, with Keras' outputs
for a fixed batch (the layout of scripts/make-keras-fixtures.py: <case>.io.bin, cases.json).
The files are ~100 MB each: they are not committed.

    TF_ENABLE_ONEDNN_OPTS=0 python scripts/check-keras-applications.py OUT_DIR [case ...]
"""

import importlib.util
import json
import os
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
here = os.path.dirname(os.path.abspath(__file__))
out = sys.argv[1]
spec = importlib.util.spec_from_file_location("fixtures", os.path.join(here, "make-keras-fixtures.py"))
fixtures = importlib.util.module_from_spec(spec)
sys.argv = [sys.argv[0], out] + sys.argv[2:]
spec.loader.exec_module(fixtures)
import keras  # noqa: E402

wanted = sys.argv[2:] or ["resnet50", "resnet50v2", "cifar_resnet20_v1_full", "cifar_resnet20_v2_full"]
os.makedirs(out, exist_ok=True)
keras.utils.set_random_seed(50)
rng = np.random.default_rng(50)
builders = {
    # preprocess_input's output ranges: caffe (BGR minus means, about ±130) and 'tf' ([-1, 1]).
    "resnet50": (lambda: keras.applications.ResNet50(weights=None), lambda: rng.uniform(-120, 130, (2, 224, 224, 3))),
    "resnet50v2": (lambda: keras.applications.ResNet50V2(weights=None), lambda: rng.uniform(-1, 1, (2, 224, 224, 3))),
    "resnet101": (lambda: keras.applications.ResNet101(weights=None), lambda: rng.uniform(-120, 130, (2, 224, 224, 3))),
    "resnet152v2": (lambda: keras.applications.ResNet152V2(weights=None), lambda: rng.uniform(-1, 1, (2, 224, 224, 3))),
    "cifar_resnet20_v1_full": (lambda: fixtures.resnet_v1((32, 32, 3), 20), lambda: rng.uniform(-1, 1, (2, 32, 32, 3))),
    "cifar_resnet20_v2_full": (lambda: fixtures.resnet_v2((32, 32, 3), 20), lambda: rng.uniform(-1, 1, (2, 32, 32, 3))),
}
cases = {}
for name in wanted:
    build, inputs = builders[name]
    cases[name] = fixtures.save_case(name, build(), inputs().astype(np.float32), False)
with open(os.path.join(out, "cases.json"), "w") as f:
    json.dump(cases, f, indent=2)
print(json.dumps(cases))
