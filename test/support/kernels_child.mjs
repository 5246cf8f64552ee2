// Child process of test/native/kernels_vs_reference.test.ts: runs a job (ops and whole models,
// given on stdin as JSON with float arrays in base64) on the kernels its environment selects
// (RESNET_KERNELS), and writes the results to stdout the same way. The parent runs it once with
// the reference kernels and once with the optimized ones and compares.
import { Model, ops, runtimeInfo, Tensor } from '../../dist/index.js';

const decode = (b64) => new Float32Array(new Uint8Array(Buffer.from(b64, 'base64')).buffer);
const encode = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
const tensor = (t) => Tensor.fromArray(decode(t.data), t.shape);
const values = (t) => encode(t.toFloat32Array());

async function runConv(c) {
  const x = tensor(c.x);
  const w = tensor(c.w);
  const dy = tensor(c.dy);
  const opts = { ...c.opts, ...(c.bias ? { bias: tensor(c.bias) } : {}) };
  const y = await ops.conv2d(x, w, opts);
  const g = await ops.conv2dBackward(x, w, dy, opts);
  return { y: values(y), dx: values(g.dx), dw: values(g.dw), ...(g.db ? { db: values(g.db) } : {}) };
}

async function runBatchNorm(c) {
  const x = tensor(c.x);
  const dy = tensor(c.dy);
  const params = () => ({ gamma: tensor(c.gamma), beta: tensor(c.beta), runningMean: tensor(c.mean), runningVar: tensor(c.var) });
  const opts = { training: c.training, momentum: 0.1, epsilon: 1e-3 };
  const p = params();
  if (c.skip) {
    const skip = tensor(c.skip);
    const y = await ops.batchNormAddRelu(x, skip, p, opts);
    const g = await ops.batchNormAddReluBackward(x, skip, dy, params(), opts);
    return {
      y: values(y),
      runningMean: values(p.runningMean),
      runningVar: values(p.runningVar),
      dx: values(g.dx),
      dskip: values(g.dskip),
      dgamma: values(g.dgamma),
      dbeta: values(g.dbeta),
    };
  }
  const y = await ops.batchNorm(x, p, opts);
  const g = await ops.batchNormBackward(x, dy, params(), opts);
  return {
    y: values(y),
    runningMean: values(p.runningMean),
    runningVar: values(p.runningVar),
    dx: values(g.dx),
    dgamma: values(g.dgamma),
    dbeta: values(g.dbeta),
  };
}

async function runModel(c) {
  const model = Model.fromSpec(c.spec, { seed: c.seed });
  for (const [name, data] of Object.entries(c.parameters)) model.setParameter(name, decode(data));
  const images = tensor(c.images);
  const labels = Int32Array.from(c.labels);
  const logits = await model.predict(images);
  const { loss, accuracy, gradients } = await model.computeGradients(images, labels, { labelSmoothing: c.smoothing });
  const grads = {};
  for (const [name, g] of gradients) grads[name] = encode(g);
  const runningStats = {};
  for (const p of model.parameterInfo()) {
    if (!p.trainable) runningStats[p.name] = encode(model.getParameter(p.name));
  }
  model.dispose();
  return { logits: values(logits), loss, accuracy, gradients: grads, runningStats };
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const job = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const out = { kernels: runtimeInfo().kernels, conv: [], batchNorm: [], models: [] };
for (const c of job.conv ?? []) out.conv.push(await runConv(c));
for (const c of job.batchNorm ?? []) out.batchNorm.push(await runBatchNorm(c));
for (const c of job.models ?? []) out.models.push(await runModel(c));
process.stdout.write(JSON.stringify(out));
