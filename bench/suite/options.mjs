// Command-line options of bench/run.mjs.
export const USAGE = `npm run bench -- [options]

  --models a,b,c      models to run (default resnet20,resnet18,resnet50)
  --quick             short measurements (1 s, fewer iterations) and no tfjs-cpu; a smoke run
  --seconds S         time each measurement for at least S seconds (default 5; --quick 1)
  --device NAME       passed to the model builders' { device } option (default: not passed, CPU);
                      cuda / cuda:N runs the GPU suite instead (bench/cuda.mjs beside bench/pytorch_cuda.py)
  --no-tfjs           skip tfjs (cpu and wasm)
  --no-tfjs-cpu       skip the tfjs cpu backend
  --no-python         skip PyTorch / onnxruntime
  --python PATH       the Python with torch / onnxruntime (default: $BENCH_PYTHON or python3)
  --out FILE          where to write the JSON (default bench/results/<date>.json)
  --help`;

const VALUED = new Set(['--models', '--seconds', '--device', '--python', '--out']);
const FLAGS = new Set(['--quick', '--no-tfjs', '--no-tfjs-cpu', '--no-python', '--help']);
export const MODEL_NAMES = ['resnet20', 'resnet18', 'resnet50'];

export function parseOptions(argv) {
  const values = {};
  const flags = new Set();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (FLAGS.has(a)) flags.add(a);
    else if (VALUED.has(a)) {
      if (argv[i + 1] === undefined) throw new Error(`${a} needs a value`);
      values[a] = argv[++i];
    } else throw new Error(`unknown option ${a}\n\n${USAGE}`);
  }
  const quick = flags.has('--quick');
  const models = (values['--models'] ?? MODEL_NAMES.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const m of models) if (!MODEL_NAMES.includes(m)) throw new Error(`--models: unknown model '${m}' (known: ${MODEL_NAMES.join(', ')})`);
  const seconds = values['--seconds'] !== undefined ? Number(values['--seconds']) : quick ? 1 : 5;
  if (!(seconds >= 0)) throw new Error('--seconds must be a number ≥ 0');
  return {
    help: flags.has('--help'),
    quick,
    models,
    seconds,
    device: values['--device'],
    tfjsCpu: !flags.has('--no-tfjs') && !flags.has('--no-tfjs-cpu') && !quick,
    tfjsWasm: !flags.has('--no-tfjs'),
    python: flags.has('--no-python') ? null : (values['--python'] ?? process.env.BENCH_PYTHON ?? 'python3'),
    out: values['--out'],
  };
}
