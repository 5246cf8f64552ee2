// Command-line options of bench/run.mjs.
export const USAGE = `npm run bench -- [options]

Per model, resnet-native, PyTorch and onnxruntime run alternately, each in its own process, for
--rounds rounds (order A B C, then C B A, …); the table gives each figure's median over rounds with
its spread (min–max) and ours ÷ each reference from the medians. Threads: RESNET_NUM_THREADS
(default 2), given to every framework (torch.set_num_threads, onnxruntime intra-op threads).

  --models a,b,c      resnet20 (CIFAR, batch 128), resnet18, resnet50 (224², batch 16); default all
  --rounds R          rounds per model (default 2; --quick 1)
  --seconds S         time each measurement for at least S seconds (default 5; --quick 1;
                      batch-1 latency min(S, 2) s)
  --quick             a smoke run: --rounds 1 --seconds 1, fewer iterations
  --python PATH       the Python with torch and onnxruntime (default: $BENCH_PYTHON or python3);
                      without them the run says so and measures resnet-native alone
  --no-python         resnet-native alone
  --tfjs              also tfjs (wasm; cpu unless --quick), once per model after the rounds
  --device NAME       passed to resnet-native's model builders (default: CPU); cuda / cuda:N runs
                      the GPU suite instead (bench/cuda.mjs beside bench/pytorch_cuda.py)
  --out FILE          the JSON (default bench/results/<date>.json)
  --help`;

const VALUED = new Set(['--models', '--rounds', '--seconds', '--device', '--python', '--out']);
const FLAGS = new Set(['--quick', '--no-python', '--tfjs', '--help']);
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
  if (!(seconds >= 0 && seconds <= 3600)) throw new Error('--seconds must be a number from 0 to 3600');
  const rounds = values['--rounds'] !== undefined ? Number(values['--rounds']) : quick ? 1 : 2;
  if (!(Number.isInteger(rounds) && rounds >= 1 && rounds <= 100)) throw new Error('--rounds must be an integer from 1 to 100');
  const threadsEnv = process.env.RESNET_NUM_THREADS;
  const threads = threadsEnv === undefined || threadsEnv === '' ? 2 : Number(threadsEnv);
  if (!(Number.isInteger(threads) && threads >= 1 && threads <= 1024))
    throw new Error(`RESNET_NUM_THREADS must be an integer ≥ 1 (got '${threadsEnv}')`);
  return {
    help: flags.has('--help'),
    quick,
    models,
    rounds,
    seconds,
    threads,
    device: values['--device'],
    tfjsCpu: flags.has('--tfjs') && !quick,
    tfjsWasm: flags.has('--tfjs'),
    python: flags.has('--no-python') ? null : (values['--python'] ?? process.env.BENCH_PYTHON ?? 'python3'),
    out: values['--out'],
  };
}
