// bench/decode_vs_train.mjs's worker_threads decoder: the same sharp pipeline imageFolder
// runs (read, decode, cover-resize to size², sRGB), one image at a time per thread.
import { readFile } from 'node:fs/promises';
import { parentPort } from 'node:worker_threads';

import sharp from 'sharp';

parentPort.on('message', async ({ id, path, size }) => {
  const bytes = await readFile(path);
  const data = await sharp(bytes, { failOn: 'error' })
    .resize({ width: size, height: size, fit: 'cover', position: 'centre' })
    .removeAlpha()
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer();
  const pixels = new Uint8Array(data); // a copy the thread owns, so it can be transferred
  parentPort.postMessage({ id, pixels }, [pixels.buffer]);
});
