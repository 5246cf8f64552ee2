// The processes the alternated benchmarks run: resnet-native (native_child.mjs, one addon per
// process) and bench/python_reference.py (PyTorch or onnxruntime, never both in one process).
// Each prints its JSON as the last line of stdout; progress goes to our stderr.
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const script = path.join(here, '..', 'python_reference.py');

function lastJsonLine(out) {
  return JSON.parse(out.trim().split('\n').at(-1));
}

/** The environment every child gets: the same thread count for every framework. */
export function childEnv(threads, extra = {}) {
  return { ...process.env, RESNET_NUM_THREADS: String(threads), ...extra };
}

/**
 * resnet-native on `models` in a fresh Node process; `addon` (a path) sets RESNET_NATIVE_ADDON.
 * { runtime, models: { name: { train?, infer, latency, flopsPerImage } } }.
 */
export function runNative({ models, seconds, quick = false, train = true, device, addon, threads }) {
  const args = [path.join(here, 'native_child.mjs'), models.join(','), String(seconds)];
  if (!train) args.push('--no-train');
  if (quick) args.push('--quick');
  if (device !== undefined) args.push('--device', device);
  const out = execFileSync(process.execPath, args, {
    encoding: 'utf8',
    env: childEnv(threads, addon ? { RESNET_NATIVE_ADDON: addon } : {}),
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 24,
  });
  return lastJsonLine(out);
}

/**
 * Which of torch and onnxruntime `python` can import: { torch, onnxruntime } versions (null when
 * missing) and `notes` saying what is missing and how to point the benchmark at another Python.
 * `python` null means --no-python.
 */
export function probePython(python) {
  if (python === null) return { torch: null, onnxruntime: null, notes: ['PyTorch and onnxruntime skipped (--no-python)'] };
  const code = [
    'import json, sys',
    'out = {}',
    'for m in ("torch", "onnxruntime"):',
    '    try:',
    '        out[m] = __import__(m).__version__',
    '    except Exception as e:',
    '        out[m] = None; out[m + "Error"] = f"{type(e).__name__}: {e}"',
    'print(json.dumps(out))',
  ].join('\n');
  const p = spawnSync(python, ['-c', code], { encoding: 'utf8' });
  const hint = 'set --python or BENCH_PYTHON to a Python with torch and onnxruntime';
  if (p.error || p.status !== 0) {
    const why = p.error ? p.error.message : (p.stderr.trim().split('\n').at(-1) ?? `exit ${p.status}`);
    return { torch: null, onnxruntime: null, notes: [`PyTorch and onnxruntime skipped: cannot run ${python} (${why}); ${hint}`] };
  }
  const v = lastJsonLine(p.stdout);
  const notes = [];
  if (!v.torch) notes.push(`PyTorch and onnxruntime skipped: ${python} cannot import torch (${v.torchError}); ${hint}`);
  else if (!v.onnxruntime) notes.push(`onnxruntime skipped: ${python} cannot import onnxruntime (${v.onnxruntimeError}); ${hint}`);
  // onnxruntime runs models that torch exports, so it needs torch too.
  return { torch: v.torch, onnxruntime: v.torch ? v.onnxruntime : null, notes };
}

function runPython(python, args, threads) {
  const out = execFileSync(python, [script, ...args, '--threads', String(threads)], {
    encoding: 'utf8',
    env: childEnv(threads),
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 24,
  });
  return lastJsonLine(out);
}

/** Exports each model to `dir`/<model>.onnx once, so the onnxruntime runs need no torch. */
export function exportOnnx(python, models, dir, threads) {
  runPython(python, ['--models', models.join(','), '--export-onnx', dir], threads);
}

/**
 * One framework ('pytorch' or 'onnxruntime') on one model in a fresh Python process:
 * { train?, infer, latency } (onnxruntime: inference only); throws with the reported error.
 */
export function runPythonFramework(python, framework, model, { seconds, quick = false, threads, onnxDir }) {
  const args = ['--models', model, '--seconds', String(seconds), framework === 'pytorch' ? '--pytorch-only' : '--onnxruntime-only'];
  if (quick) args.push('--quick');
  if (framework === 'onnxruntime' && onnxDir) args.push('--onnx-dir', onnxDir);
  const r = runPython(python, args, threads);
  const m = r.models?.[model] ?? {};
  const value = m[framework];
  if (!value) throw new Error(m[`${framework}Error`] ?? r.torchError ?? r.onnxruntimeError ?? `${framework}: no result`);
  return { ...value, version: framework === 'pytorch' ? r.torch?.version : r.onnxruntime?.version };
}
