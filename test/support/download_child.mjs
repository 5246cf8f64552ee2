// Child process of test/model/pretrained.test.ts: one process's fetchWeights(url, fileName) into
// the cache named by its environment (RESNET_NATIVE_HOME), from the built package. Prints the
// path on success; on failure prints the error's code and message and exits 1.
import { fetchWeights } from '../../dist/io/weights_cache.js';

const [url, fileName] = process.argv.slice(2);
try {
  process.stdout.write(`${await fetchWeights(url, fileName, { progress: false })}\n`);
} catch (err) {
  process.stdout.write(`${err.code} ${err.message}\n`);
  process.exit(1);
}
