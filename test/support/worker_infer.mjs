// Worker of test/native/workers.test.ts: builds the model workerData describes (a models.resnetCifar
// configuration with its seed), predicts each batch it was given and posts back the logits. The
// model and input tensors are left undisposed: the worker's exit has to free them.
import { parentPort, workerData } from 'node:worker_threads';

import { models, Tensor } from '../../dist/index.js';

const model = models.resnetCifar(workerData.model);
const logits = [];
for (const { data, shape } of workerData.batches) {
  logits.push((await model.predict(Tensor.fromArray(data, shape))).toFloat32Array());
}
parentPort.postMessage(logits);
