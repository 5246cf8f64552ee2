// PyTorch and onnxruntime through bench/python_reference.py, when the given Python has torch.
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'python_reference.py');

/** { available: false, reason } or the script's JSON ({ torch, onnxruntime, models: { name: { pytorch, onnxruntime } } }). */
export function benchPython(python, modelNames, threads, opts) {
  if (python === null) return { available: false, reason: 'skipped (--no-python)' };
  const probe = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    const why = probe.error ? probe.error.message : (probe.stderr.trim().split('\n').at(-1) ?? `exit ${probe.status}`);
    return {
      available: false,
      reason: `\`${python} -c 'import torch'\` failed (${why}); set --python or BENCH_PYTHON to a Python with torch and onnxruntime`,
    };
  }
  const args = [
    script,
    '--models',
    modelNames.join(','),
    '--threads',
    String(threads),
    '--seconds',
    String(opts.seconds),
    ...(opts.quick ? ['--quick'] : []),
  ];
  const out = execFileSync(python, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
  return { available: true, ...JSON.parse(out.trim().split('\n').at(-1)) };
}
