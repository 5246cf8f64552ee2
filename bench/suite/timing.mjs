// Timing loops and their summaries. Throughput sums the step times, so pauses between
// steps (GC, the event loop) do not count against anyone.
const now = () => performance.now();

/**
 * Runs `step` until `minSeconds` passed and at least `minIters` ran (at most `maxIters`); per-step
 * ms, with `cpuMs`: the process CPU time the loop used (all threads), for summarize's CPU figure.
 */
export async function timeLoop(step, { minSeconds, minIters = 1, maxIters = Infinity }) {
  const times = [];
  const cpu0 = process.cpuUsage();
  const start = now();
  while ((now() - start < minSeconds * 1000 || times.length < minIters) && times.length < maxIters) {
    const t0 = now();
    await step();
    times.push(now() - t0);
  }
  const cpu = process.cpuUsage(cpu0);
  times.cpuMs = (cpu.user + cpu.system) / 1000;
  return times;
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * { steps, msPerStep, msMedian, imagesPerSecond } for steps of `batch` images, and with `threads`,
 * cpuImagesPerSecond: images per CPU-second × threads — what an otherwise idle machine would
 * give when other processes share the cores (valid for work that keeps every thread busy).
 */
export function summarize(times, batch, threads) {
  const total = times.reduce((a, b) => a + b, 0);
  const s = {
    steps: times.length,
    msPerStep: total / times.length,
    msMedian: median(times),
    imagesPerSecond: (batch * times.length) / (total / 1000),
  };
  if (threads && times.cpuMs > 0) s.cpuImagesPerSecond = (batch * times.length * threads) / (times.cpuMs / 1000);
  return s;
}
