// Parameter groups and the patterns that pick their parameters: a checkpoint's patterns are
// matched in linear time (a hostile /^(a+)+$/ next to layers named 'aaa…a!' loads at once
// instead of blocking the event loop for minutes), the linear-time matcher answers exactly as
// RegExp does on a seeded random corpus, syntax beyond it is refused by name, g / y flags
// no longer skip parameters, and groups survive a checkpoint round trip.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { type CompileOptions, type Dataset, Model, type ModelSpec, models, Trainer } from '../../lib/index.js';
import { deserializeCompileOptions, loadModel, saveModel } from '../../lib/io/checkpoint.js';
import { decodeSafetensors, encodeSafetensors } from '../../lib/io/safetensors.js';
import { resolveCompileOptions } from '../../lib/train/optimizers.js';
import { MAX_PATTERN_LENGTH, SafePattern } from '../../lib/train/safe_pattern.js';
import { expectCode } from '../support/expect_error.js';
import { Rng } from '../support/random.js';

const root = mkdtempSync(join(tmpdir(), 'rn-param-groups-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let files = 0;
const freshPath = () => join(root, `m${files++}.safetensors`);

const dataset = (): Dataset => ({ length: 4, imageShape: [8, 8, 3], classes: 4, fill: (_i, _x, y) => void y.fill(0) });
const tinySpec = (): ModelSpec => models.specs.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 4 }) as ModelSpec;

/** The spec with every layer renamed by `rename` (inputs and output follow). */
function renamed(spec: ModelSpec, rename: (name: string, index: number) => string): ModelSpec {
  const names = new Map(spec.layers.map((l, i) => [l.name, rename(l.name, i)]));
  const layers = spec.layers.map((l) => ({ ...l, name: names.get(l.name)!, inputs: l.inputs.map((n) => names.get(n) ?? n) }));
  return { ...spec, layers, output: names.get(spec.output)! } as ModelSpec;
}

/** A checkpoint of `spec` whose stored optimizer options are replaced by `optimizer` (as a hostile file would be). */
async function checkpointWith(spec: ModelSpec, optimizer: object): Promise<string> {
  const model = Model.fromSpec(spec, { seed: 1 }).compile({ optimizer: { type: 'sgd', lr: 0.1 } });
  const path = freshPath();
  try {
    await saveModel(model, path);
  } finally {
    model.dispose();
  }
  const { metadata, tensors } = decodeSafetensors(readFileSync(path));
  metadata.optimizer = JSON.stringify(optimizer);
  const out = freshPath();
  writeFileSync(
    out,
    encodeSafetensors(
      [...tensors].map(([name, t]) => ({ name, shape: t.shape, data: t.data as Float32Array })),
      metadata,
    ),
  );
  return out;
}

// ---------------------------------------------------------------------------------------------

describe('a hostile checkpoint cannot stall loading', () => {
  // Layers named 'a'×n + '!k' and the classic catastrophic-backtracking pattern: RegExp takes
  // ~2^n steps per parameter name, the linear-time matcher ~n.
  const hostile = (n: number) =>
    checkpointWith(
      renamed(tinySpec(), (_, i) => `${'a'.repeat(n)}!${i}`),
      { optimizer: { type: 'sgd', lr: 0.1 }, paramGroups: [{ match: { regexp: '^(a+)+$', flags: '' }, lrScale: 0.5 }] },
    );

  async function loadSeconds(path: string): Promise<number> {
    let best = Infinity;
    for (let k = 0; k < 3; k++) {
      const t0 = performance.now();
      (await loadModel(path)).dispose();
      best = Math.min(best, (performance.now() - t0) / 1000);
    }
    return best;
  }

  it("names of 22 vs 10 repeated characters load in about the same time; the reviewer's 32 loads in well under a second (loadModel, and Trainer resumeFrom)", async () => {
    // Scaling first, at sizes where backtracking costs seconds, not minutes: a regression fails
    // here before the hang guard below would block the worker.
    const short = await loadSeconds(await hostile(10));
    const long = await loadSeconds(await hostile(22));
    expect(long, `load time ${long.toFixed(3)} s with 22 repeats vs ${short.toFixed(3)} s with 10`).toBeLessThan(3 * short + 0.05);

    const path = await hostile(32);
    const t0 = performance.now();
    const model = await loadModel(path);
    const seconds = (performance.now() - t0) / 1000;
    try {
      expect(seconds, `hostile checkpoint loaded in ${seconds.toFixed(3)} s`).toBeLessThan(1);
      // The group was read and applied: the pattern matches none of these names, so nothing is scaled.
      expect(model.compileOptions?.paramGroups?.[0]?.match).toEqual(/^(a+)+$/);
    } finally {
      model.dispose();
    }
    // Trainer's resumeFrom reads it the same way: at once (this file has no training state to resume).
    const trainee = Model.fromSpec(
      renamed(tinySpec(), (_, i) => `${'a'.repeat(32)}!${i}`),
      { seed: 2 },
    ).compile({ optimizer: { type: 'sgd', lr: 0.1 } });
    try {
      const start = performance.now();
      await expectCode(
        () => new Trainer(trainee, { verbose: false }).fit(dataset(), { epochs: 1, batchSize: 2, resumeFrom: path }),
        'E_FORMAT',
        'no training state',
      );
      expect(performance.now() - start).toBeLessThan(1000);
    } finally {
      trainee.dispose();
    }
  });

  it('the heaviest patterns a file may hold (every state alive at every character) still load fast; more is E_FORMAT, and saving more is E_ARG', async () => {
    const heavy = { regexp: `${'(?:.?){64}'.repeat(7)}x`, flags: '' }; // ~900 instructions, all of them live on 'aaa…'
    const spec = renamed(tinySpec(), (_, i) => `${'a'.repeat(32)}!${i}`);
    const within = await checkpointWith(spec, {
      optimizer: { type: 'sgd', lr: 0.1 },
      paramGroups: Array.from({ length: 4 }, () => ({ match: heavy })),
    });
    const t0 = performance.now();
    (await loadModel(within)).dispose();
    const seconds = (performance.now() - t0) / 1000;
    expect(seconds, `loaded in ${seconds.toFixed(3)} s`).toBeLessThan(2);

    const over = await checkpointWith(spec, {
      optimizer: { type: 'sgd', lr: 0.1 },
      paramGroups: Array.from({ length: 5 }, () => ({ match: heavy })),
    });
    await expectCode(() => loadModel(over), 'E_FORMAT', 'paramGroups[4]', 'instructions', '4096');
    const tooMany = await checkpointWith(spec, {
      optimizer: { type: 'sgd', lr: 0.1 },
      paramGroups: Array.from({ length: 257 }, () => ({ match: { names: ['x'] } })),
    });
    await expectCode(() => loadModel(tooMany), 'E_FORMAT', '257 paramGroups', 'limit of 256');

    const model = models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 4, seed: 1 });
    try {
      model.compile({
        optimizer: { type: 'sgd', lr: 0.1 },
        paramGroups: Array.from({ length: 5 }, () => ({ match: new RegExp(heavy.regexp), lrScale: 0.5 })),
      });
      await expectCode(() => saveModel(model, freshPath()), 'E_ARG', 'paramGroups[4]', 'instructions', 'list of parameter names');
    } finally {
      model.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------------

/** Random patterns from the supported subset, and names that sometimes fit them. */
class PatternCorpus {
  static readonly CHARS = [
    'a',
    'b',
    'A',
    'B',
    'k',
    'K',
    '_',
    '.',
    '-',
    '1',
    '9',
    ' ',
    '\n',
    '\r',
    'ß',
    'ſ',
    '\u212a',
    'σ',
    'ς',
    'Σ',
    'é',
    'É',
    'ı',
    'İ',
    '\u2028',
    '\u00a0',
  ];
  constructor(readonly rng: Rng) {}

  name(): string {
    let s = '';
    for (let j = this.rng.int(0, 10); j > 0; j--) s += this.rng.pick(PatternCorpus.CHARS);
    return s;
  }

  #char(): string {
    const c = this.rng.pick(PatternCorpus.CHARS);
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    return /[\\^$.*+?()[\]{}|/-]/.test(c) ? `\\${c}` : c;
  }

  #classItem(): string {
    switch (this.rng.int(0, 3)) {
      case 0:
        return this.#char();
      case 1:
        return this.rng.pick(['a-c', 'A-Z', '0-9', 'a-z', 'à-ÿ', '\\x00-\\x2f', 'B-b', 'ß-ſ', '\\u03a3-\\u03c3']);
      default:
        return this.rng.pick(['\\d', '\\w', '\\s', '\\W', '\\D', '\\S', '\\b', '\\-', '\\.', '^', ']'.replace(']', '\\]')]);
    }
  }

  #term(depth: number): string {
    let atom: string;
    switch (this.rng.int(0, 9)) {
      case 0:
      case 1:
      case 2:
        atom = this.#char();
        break;
      case 3:
        atom = '.';
        break;
      case 4:
        atom = this.rng.pick(['\\d', '\\w', '\\s', '\\W', '\\D', '\\S', '\\.', '\\x41', '\\u00e9', '\\n', '\\cJ', '\\0', '\\/', '}', ']']);
        break;
      case 5: {
        let c = this.rng.next() < 0.3 ? '[^' : '[';
        for (let k = this.rng.int(0, 3); k > 0; k--) c += this.#classItem();
        atom = `${c}]`;
        break;
      }
      case 6:
        if (depth >= 3) return '^';
        atom = `${this.rng.pick(['(', '(?:', `(?<g${this.rng.int(0, 1e6)}>`])}${this.pattern(depth + 1)})`;
        break;
      case 7:
        return this.rng.pick(['^', '$', '\\b', '\\B']);
      case 8:
        return this.rng.pick(['{', 'a{,2}', 'x{2', '{}']); // literal braces (not quantifiers)
      default:
        atom = this.rng.pick(['a', 'b', 'A', 'k', '_', '1']);
    }
    return atom + this.rng.pick(['', '', '', '*', '+', '?', '{2}', '{1,}', '{0,2}', '{1,3}', '*?', '+?', '??', '{1,2}?', '{0}']);
  }

  pattern(depth = 0): string {
    const alternatives: string[] = [];
    for (let a = this.rng.next() < 0.25 ? 2 : 1; a > 0; a--) {
      let s = '';
      for (let k = this.rng.int(0, 3); k > 0; k--) s += this.#term(depth);
      alternatives.push(s);
    }
    return alternatives.join('|');
  }

  flags(): string {
    return [...'dgimsy'].filter(() => this.rng.next() < 0.3).join('');
  }
}

describe('SafePattern: the linear-time matcher', () => {
  it('answers exactly as RegExp.test on a seeded random corpus of patterns, flags and names (differential)', () => {
    const corpus = new PatternCorpus(new Rng(20240516));
    let compared = 0;
    let matched = 0;
    for (let t = 0; t < 4000; t++) {
      const source = corpus.pattern();
      const flags = corpus.flags();
      let reference: RegExp;
      try {
        reference = new RegExp(source, flags.replace(/[gy]/g, '')); // g / y: ignored for names
      } catch {
        continue; // e.g. a quantifier after an assertion: not a pattern at all
      }
      const safe = SafePattern.tryCompile(source, flags);
      expect(safe, `/${source}/${flags}: ${SafePattern.whyRefused(source, flags)}`).toBeDefined();
      for (let k = 0; k < 12; k++) {
        const name = corpus.name();
        const want = reference.test(name);
        expect(safe!.test(name), `/${source}/${flags} on ${JSON.stringify(name)}`).toBe(want);
        compared++;
        if (want) matched++;
      }
    }
    // The corpus exercises both answers.
    expect(compared).toBeGreaterThan(40_000);
    expect(matched / compared).toBeGreaterThan(0.2);
    expect(matched / compared).toBeLessThan(0.8);
  });

  it('the patterns people write for parameter groups agree with RegExp on every parameter name of resnet50', () => {
    const names = models.specs.resnet50().layers.flatMap((l) => ['weight', 'bias', 'running_mean'].map((s) => `${l.name}.${s}`));
    const patterns: [string, string][] = [
      ['^fc\\.', ''],
      ['bn|bias', ''],
      ['\\.bias$', ''],
      ['^layer[34]\\.\\d+\\.(bn\\d|downsample\\.1)\\.', ''],
      ['^LAYER1\\.', 'i'],
      ['(^|\\.)conv\\d?\\.weight$', ''],
      ['\\bbn\\w*\\.', 'g'],
      ['^layer\\d\\.\\d{1,2}\\.', 'y'],
    ];
    for (const [source, flags] of patterns) {
      const safe = SafePattern.tryCompile(source, flags)!;
      const reference = new RegExp(source, flags.replace(/[gy]/g, ''));
      const want = names.filter((n) => reference.test(n));
      expect(want.length, source).toBeGreaterThan(0);
      expect(
        names.filter((n) => safe.test(n)),
        `/${source}/${flags}`,
      ).toEqual(want);
    }
  });

  it('takes time linear in the name: a 20 000-character name against /^(a+)+$/ and /(a|aa)*b/ in milliseconds', () => {
    const cases: [string, boolean][] = [
      ['^(a+)+$', false],
      ['(a|aa)*b', false],
      ['(a*)*$', true],
      ['^(?:a?){20}a{20}$', false],
    ];
    for (const [source, want] of cases) {
      const safe = SafePattern.tryCompile(source, '')!;
      const t0 = performance.now();
      expect(safe.test(`${'a'.repeat(20_000)}!`), source).toBe(want);
      expect(performance.now() - t0, source).toBeLessThan(1000);
    }
    // Compiling is bounded too: nested repeats of an empty item are not expanded, large ones hit the size limit.
    for (const [source, compiles] of [
      ['(((((a{0}){64}){64}){64}){64}){64}', true],
      ['(((((?:){64}){64}){64}){64}){64}b', true],
      ['((((a?){64}){64}){64}){64}', false],
    ] as const) {
      const t0 = performance.now();
      expect(SafePattern.tryCompile(source, '') !== undefined, source).toBe(compiles);
      expect(performance.now() - t0, source).toBeLessThan(1000);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('patterns beyond the subset', () => {
  const refused: [source: string, flags: string, mention: string][] = [
    ['(a)\\1', '', 'backreference'],
    ['(?<n>a)\\k<n>', '', 'backreference'],
    ['a(?=b)', '', 'lookaround'],
    ['a(?!b)', '', 'lookaround'],
    ['(?<=a)b', '', 'lookaround'],
    ['(?<!a)b', '', 'lookaround'],
    ['\\p{L}', 'u', "flags 'u'"],
    ['conv', 'u', "flags 'u'"],
    ['conv', 'v', "flags 'v'"],
    ['\\01', '', 'octal'],
    ['\\a', '', '\\a'],
    ['a{65}', '', 'above 64'],
    ['(a{64}){64}', '', 'instructions'],
    ['x'.repeat(MAX_PATTERN_LENGTH + 1), '', `limit of ${MAX_PATTERN_LENGTH}`],
    ['(', '', 'not a valid RegExp'],
  ];

  it('a checkpoint holding one is E_FORMAT naming the group, the pattern and what is unsupported', async () => {
    for (const [source, flags, mention] of refused) {
      const json = JSON.stringify({ optimizer: { type: 'sgd', lr: 0.1 }, paramGroups: [{ match: { regexp: source, flags } }] });
      await expectCode(
        () => deserializeCompileOptions(json, 'hostile.safetensors'),
        'E_FORMAT',
        'hostile.safetensors',
        'paramGroups[0].match',
        `/${source.slice(0, 40)}`,
        mention,
      );
    }
    // Through the whole loader too.
    const path = await checkpointWith(tinySpec(), { optimizer: { type: 'sgd', lr: 0.1 }, paramGroups: [{ match: { regexp: 'a(?=b)', flags: '' } }] });
    await expectCode(() => loadModel(path), 'E_FORMAT', 'paramGroups[0].match', '/a(?=b)/', 'lookaround');
  });

  it('a model compiled with one trains as before (RegExp semantics), but saving it is E_ARG naming the pattern, nothing written', async () => {
    const model = models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 4, seed: 1 });
    try {
      model.compile({ optimizer: { type: 'sgd', lr: 0.1 }, paramGroups: [{ match: /^(?!fc)/, lrScale: 0 }] });
      const path = freshPath();
      await expectCode(
        () => saveModel(model, path),
        'E_ARG',
        'paramGroups[0].match',
        '/^(?!fc)/',
        'lookaround',
        'list of parameter names',
        'optimizer: false',
      );
      expect(existsSync(path)).toBe(false);
      await saveModel(model, path, { optimizer: false });
    } finally {
      model.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('RegExp flags g and y', () => {
  const params = models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 4, seed: 1 });
  afterAll(() => params.dispose());

  /** Names whose decay the group set to 0 (the default decay is 0.5 for every parameter). */
  function grouped(match: RegExp): string[] {
    const info = params.parameterInfo();
    const { config } = resolveCompileOptions(
      { optimizer: { type: 'sgd', lr: 0.1, weightDecay: 0.5 }, decayNormAndBias: true, paramGroups: [{ match, weightDecay: 0 }] },
      info,
    );
    return info
      .filter((p) => p.trainable)
      .filter((_, i) => config.decayScale[i] === 0)
      .map((p) => p.name);
  }

  it('a global or sticky RegExp matches every parameter it should (not every other one), and its lastIndex is left alone', () => {
    const all = params
      .parameterInfo()
      .filter((p) => p.trainable)
      .map((p) => p.name);
    const expected = all.filter((n) => /conv/.test(n));
    expect(expected.length).toBeGreaterThan(3);
    for (const re of [/conv/g, /conv/y, /conv/gy, /(?=conv)/g, /conv/gi]) {
      expect(grouped(re), String(re)).toEqual(expected);
      expect(re.lastIndex, String(re)).toBe(0);
    }
    // Sticky means "at lastIndex" for RegExp.test; for a name it is ignored like g (a match anywhere).
    expect(grouped(/bn/y)).toEqual(all.filter((n) => /bn/.test(n)));
  });
});

// ---------------------------------------------------------------------------------------------

describe('checkpoint round trip of parameter groups', () => {
  it('groups come back as the same RegExps (source and flags) and name lists, and resolve to the same per-parameter settings', async () => {
    const options: CompileOptions = {
      optimizer: { type: 'adamw', lr: 1e-3, weightDecay: 0.05 },
      paramGroups: [
        { match: /^LAYER1\.\d+\.BN/gi, lrScale: 0.5 },
        { match: /\.bias$|^fc\./m, weightDecay: 0 },
        { match: ['conv1.weight'], lrScale: 2, weightDecay: 0.1 },
      ],
    };
    const a = models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 4, seed: 3 }).compile(options);
    const path = freshPath();
    try {
      await saveModel(a, path);
      const stored = JSON.parse(decodeSafetensors(readFileSync(path)).metadata.optimizer!);
      expect(stored.paramGroups.map((g: { match: unknown }) => g.match)).toEqual([
        { regexp: '^LAYER1\\.\\d+\\.BN', flags: 'gi' },
        { regexp: '\\.bias$|^fc\\.', flags: 'm' },
        { names: ['conv1.weight'] },
      ]);
      const b = await loadModel(path);
      try {
        const groups = b.compileOptions!.paramGroups!;
        expect(groups.map((g) => g.match)).toEqual([/^LAYER1\.\d+\.BN/gi, /\.bias$|^fc\./m, ['conv1.weight']]);
        const info = a.parameterInfo();
        const ra = resolveCompileOptions(options, info).config;
        const rb = resolveCompileOptions(b.compileOptions!, info).config;
        expect(Array.from(rb.decayScale)).toEqual(Array.from(ra.decayScale));
        expect(Array.from(rb.lrScale)).toEqual(Array.from(ra.lrScale));
        expect(Array.from(ra.lrScale)).toContain(0.5); // the case-insensitive group matched something
        // And saves back to the same stored form.
        const again = freshPath();
        await saveModel(b, again);
        expect(JSON.parse(decodeSafetensors(readFileSync(again)).metadata.optimizer!).paramGroups).toEqual(stored.paramGroups);
      } finally {
        b.dispose();
      }
    } finally {
      a.dispose();
    }
  });
});
