#!/usr/bin/env python3
"""Checks the ONNX files scripts/check-onnx-export.mjs wrote: onnx.checker (full check),
strict shape inference, and native onnxruntime with and without its graph optimizations
against model.predict's logits (relative error printed; fails above 1e-4). Not run by CI.

    python3 scripts/check-onnx-export.py /tmp/onnx-check
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort

folder = sys.argv[1]
manifest = json.load(open(f"{folder}/manifest.json"))
for name, m in manifest.items():
    path = f"{folder}/{name}.onnx"
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, strict_mode=True)
    x = np.fromfile(f"{folder}/{name}.input.bin", dtype=np.float32).reshape(m["shape"])
    if m["layout"] == "NCHW":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    expected = np.fromfile(f"{folder}/{name}.logits.bin", dtype=np.float32).reshape(m["shape"][0], m["classes"])
    errors = {}
    for level in ("ORT_ENABLE_ALL", "ORT_DISABLE_ALL"):
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        logits, probabilities = session.run(["logits", "probabilities"], {"input": x})
        errors[level] = float(np.abs(logits - expected).max() / np.abs(expected).max())
        assert errors[level] <= 1e-4, f"{name}: {level} relative error {errors[level]}"
        assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    print(
        f"{name}: checker ok, IR {model.ir_version}, opset {model.opset_import[0].version}, "
        f"{len(model.graph.node)} nodes, input {dims}, relative error "
        + ", ".join(f"{k} {v:.1e}" for k, v in errors.items())
    )
print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}: {len(manifest)} models ok")
