// The generic ResNet builder: checked options → ModelSpec. Layer names: see builders.ts.
import { ResNetError } from '../errors.js';
import * as validate from '../validate.js';
import { isPlainObject } from '../validate.js';
import { type BlockConfig, SpecGraph, convBias, residualBlock } from './blocks.js';
import {
  type StemLayerOptions,
  type ResNetOptions,
  checkKeys,
  size,
  size2,
  padding,
  inputShape,
  RESNET_KEYS,
  BLOCK_TYPES,
  IMAGENET_STEM,
  CIFAR_STEM,
} from './builder_options.js';
import type { ModelSpec } from './spec.js';

// ---------------------------------------------------------------------------------------
// The generic builder

interface BuildContext {
  fn: string;
  g: SpecGraph;
  convBias: boolean | 'auto';
  bnEpsilon: number;
  bnMomentum: number;
}

/** Appends the stem; returns its output ('input' for an empty stem). */
function buildStem(ctx: BuildContext, stem: StemLayerOptions[], firstBlockStartsWithBatchNorm: boolean): string {
  const { fn, g } = ctx;
  const counts = new Map<string, number>();
  const defaultName = (base: string, indexFirst: boolean): string => {
    const k = (counts.get(base) ?? 0) + 1;
    counts.set(base, k);
    return indexFirst || k > 1 ? `${base}${k}` : base;
  };
  let x = 'input';
  stem.forEach((d: unknown, i) => {
    const at = `stem[${i}]`;
    if (!isPlainObject(d)) validate.invalid(d, fn, at, 'a stem layer object');
    const type = validate.oneOf(d.type, fn, `${at}.type`, ['conv2d', 'batchNorm', 'relu', 'maxPool', 'avgPool', 'zeroPad'] as const);
    const own = d.name === undefined ? undefined : validate.string(d.name, fn, `${at}.name`);
    switch (type) {
      case 'conv2d': {
        checkKeys(d, fn, `${at}.`, ['type', 'filters', 'kernelSize', 'strides', 'padding', 'useBias', 'name']);
        const next = stem[i + 1];
        const followedByBatchNorm = next === undefined ? firstBlockStartsWithBatchNorm : isPlainObject(next) && next.type === 'batchNorm';
        x = g.conv2d(own ?? defaultName('conv', true), x, {
          filters: size(d.filters, fn, `${at}.filters`, 1),
          kernelSize: size2(d.kernelSize, fn, `${at}.kernelSize`, 1),
          strides: d.strides === undefined ? [1, 1] : size2(d.strides, fn, `${at}.strides`, 1),
          padding: d.padding === undefined ? 'valid' : padding(d.padding, fn, `${at}.padding`),
          useBias: d.useBias === undefined ? convBias(ctx.convBias, followedByBatchNorm) : validate.boolean(d.useBias, fn, `${at}.useBias`),
        });
        break;
      }
      case 'batchNorm':
        checkKeys(d, fn, `${at}.`, ['type', 'name']);
        x = g.batchNorm(own ?? defaultName('bn', true), x, ctx.bnEpsilon, ctx.bnMomentum);
        break;
      case 'relu':
        checkKeys(d, fn, `${at}.`, ['type', 'name']);
        x = g.relu(own ?? defaultName('relu', false), x);
        break;
      case 'maxPool':
      case 'avgPool': {
        checkKeys(d, fn, `${at}.`, ['type', 'poolSize', 'strides', 'padding', 'name']);
        const poolSize = size2(d.poolSize, fn, `${at}.poolSize`, 1);
        x = g.pool(
          type,
          own ?? defaultName(type === 'maxPool' ? 'maxpool' : 'stem_avgpool', false),
          x,
          poolSize,
          d.strides === undefined ? poolSize : size2(d.strides, fn, `${at}.strides`, 1),
          d.padding === undefined ? 'valid' : padding(d.padding, fn, `${at}.padding`),
        );
        break;
      }
      case 'zeroPad': {
        checkKeys(d, fn, `${at}.`, ['type', 'padding', 'name']);
        const p = padding(d.padding, fn, `${at}.padding`);
        if (typeof p === 'string') validate.invalid(p, fn, `${at}.padding`, 'an integer ≥ 0 or [top, bottom, left, right]');
        x = g.zeroPad(own ?? defaultName('pad', false), x, typeof p === 'number' ? [p, p, p, p] : p);
        break;
      }
    }
  });
  return x;
}

/** Appends the head; returns the logits layer ('fc'). */
function buildHead(ctx: BuildContext, head: unknown, classes: number, x: string): string {
  const { fn, g } = ctx;
  const h: Record<string, unknown> =
    head === undefined || head === 'global' ? {} : isPlainObject(head) ? head : validate.invalid(head, fn, 'head', "'global' or a head object");
  checkKeys(h, fn, 'head.', ['pool', 'hidden', 'useBias']);
  const useBias = h.useBias === undefined ? true : validate.boolean(h.useBias, fn, 'head.useBias');
  const pool = h.pool ?? 'global';
  if (pool === 'global') {
    x = g.globalAvgPool('avgpool', x);
  } else if (pool === 'flatten') {
    x = g.flatten('flatten', x);
  } else if (isPlainObject(pool)) {
    checkKeys(pool, fn, 'head.pool.', ['type', 'poolSize', 'strides', 'padding']);
    const type = validate.oneOf(pool.type, fn, 'head.pool.type', ['avgPool', 'maxPool'] as const);
    const poolSize = size2(pool.poolSize, fn, 'head.pool.poolSize', 1);
    x = g.pool(
      type,
      type === 'avgPool' ? 'avgpool' : 'head_maxpool',
      x,
      poolSize,
      pool.strides === undefined ? poolSize : size2(pool.strides, fn, 'head.pool.strides', 1),
      pool.padding === undefined ? 'valid' : padding(pool.padding, fn, 'head.pool.padding'),
    );
    x = g.flatten('flatten', x);
  } else {
    validate.invalid(pool, fn, 'head.pool', "'global', 'flatten' or a pool window object");
  }
  const hidden = h.hidden ?? [];
  if (!Array.isArray(hidden)) validate.invalid(hidden, fn, 'head.hidden', 'an array of unit counts');
  hidden.forEach((units: unknown, k) => {
    x = g.dense(`fc_hidden${k + 1}`, x, size(units, fn, `head.hidden[${k}]`, 1), useBias);
    x = g.relu(`fc_hidden${k + 1}_relu`, x);
  });
  return g.dense('fc', x, classes, useBias);
}

/** `stem` as its layer list: a named stem's, or the caller's array (checked by buildStem). */
function stemLayers(v: unknown, fn: string): StemLayerOptions[] {
  if (v === 'imagenet') return IMAGENET_STEM;
  if (v === 'cifar') return CIFAR_STEM;
  if (Array.isArray(v)) return v as StemLayerOptions[];
  return validate.invalid(v, fn, 'stem', "'imagenet', 'cifar' or an array of stem layers");
}

interface CheckedStage {
  blocks: number;
  stride: number;
  inner: number;
  out: number;
}

/** `stages` checked, with each stage's inner and output widths worked out. */
function checkStages(
  v: unknown,
  fn: string,
  { bottleneck, expansion, widthPerGroup, groups }: { bottleneck: boolean; expansion: number; widthPerGroup: number; groups: number },
): CheckedStage[] {
  if (!Array.isArray(v) || v.length === 0) {
    validate.invalid(v, fn, 'stages', 'a non-empty array of { blocks, width, stride? }');
  }
  return (v as unknown[]).map((st, i) => {
    const at = `stages[${i}]`;
    if (!isPlainObject(st)) validate.invalid(st, fn, at, 'an object { blocks, width, stride?, expansion? }');
    checkKeys(st, fn, `${at}.`, ['blocks', 'width', 'stride', 'expansion']);
    const width = size(st.width, fn, `${at}.width`, 1);
    const e = st.expansion === undefined ? expansion : size(st.expansion, fn, `${at}.expansion`, 1);
    const inner = bottleneck ? Math.floor((width * widthPerGroup) / 64) * groups : width;
    if (inner < 1) {
      throw new ResNetError('E_ARG', `${fn}: ${at}.width ${width} with widthPerGroup ${widthPerGroup} gives a bottleneck of width 0`);
    }
    return {
      blocks: size(st.blocks, fn, `${at}.blocks`, 1),
      stride: st.stride === undefined ? (i === 0 ? 1 : 2) : size(st.stride, fn, `${at}.stride`, 1, 64),
      inner,
      out: width * e,
    };
  });
}

/** The residual blocks of every stage; the first block of a stage (or the last) carries the stride. */
function buildStages(
  ctx: BuildContext,
  input: string,
  stages: readonly CheckedStage[],
  base: Omit<BlockConfig, 'inner' | 'out' | 'stride' | 'skipPreact'>,
  downsampleBlock: 'first' | 'last',
  skipFirstPreact: boolean,
): string {
  let x = input;
  stages.forEach((st, i) => {
    for (let j = 0; j < st.blocks; j++) {
      const strided = downsampleBlock === 'first' ? j === 0 : j === st.blocks - 1;
      const cfg: BlockConfig = {
        ...base,
        inner: st.inner,
        out: st.out,
        stride: strided ? st.stride : 1,
        skipPreact: skipFirstPreact && i === 0 && j === 0,
      };
      x = residualBlock(ctx.g, `layer${i + 1}.${j}`, x, cfg);
    }
  });
  return x;
}

/**
 * Options → spec: every option is read and checked here, in the order the error messages promise
 * (the tests pin that order), then the stem, the stages and the head are built by the helpers
 * above. Long because it is one flat list of option reads, not because it branches.
 */
export function build(options: ResNetOptions, fn: string): ModelSpec {
  if (!isPlainObject(options)) validate.invalid(options, fn, 'options', 'an object');
  const o = options as unknown as Record<string, unknown>;
  checkKeys(o, fn, '', RESNET_KEYS);
  /** An enumerated option; the first value is its default. */
  const choice = <T extends string>(option: string, values: readonly T[]): T =>
    o[option] === undefined ? values[0] : validate.oneOf(o[option], fn, option, values);

  const specName = o.name === undefined ? 'resnet' : validate.string(o.name, fn, 'name');
  const classes = size(o.classes, fn, 'classes', 1);
  const shape = o.inputShape === undefined ? ([224, 224, 3] as [number, number, number]) : inputShape(o.inputShape, fn);
  const block = validate.oneOf(o.block, fn, 'block', BLOCK_TYPES);
  const preact = block === 'preactBasic' || block === 'preactBottleneck';
  const bottleneck = block === 'bottleneck' || block === 'preactBottleneck';

  const groups = o.groups === undefined ? 1 : size(o.groups, fn, 'groups', 1);
  const widthPerGroup = o.widthPerGroup === undefined ? 64 : size(o.widthPerGroup, fn, 'widthPerGroup', 1);
  if (!bottleneck && (groups !== 1 || widthPerGroup !== 64)) {
    throw new ResNetError(
      'E_ARG',
      `${fn}: groups and widthPerGroup apply to bottleneck blocks; block '${block}' needs groups 1 and widthPerGroup 64, ` +
        `got groups ${groups}, widthPerGroup ${widthPerGroup}`,
    );
  }
  const expansion = o.expansion === undefined ? (bottleneck ? 4 : 1) : size(o.expansion, fn, 'expansion', 1);
  let seReduction: number | undefined;
  if (o.se !== undefined) {
    if (!isPlainObject(o.se)) validate.invalid(o.se, fn, 'se', 'an object { reduction }');
    checkKeys(o.se, fn, 'se.', ['reduction']);
    seReduction = size(o.se.reduction, fn, 'se.reduction', 1);
  }
  const shortcut = choice('shortcut', ['projection', 'zeroPad'] as const);
  const projectionNorm = o.projectionNorm === undefined ? !preact : validate.boolean(o.projectionNorm, fn, 'projectionNorm');
  const strideShortcut = choice('strideShortcut', ['projection', 'subsample'] as const);
  const strideOn = choice('strideOn', ['3x3', '1x1'] as const);
  const downsampleBlock = choice('downsampleBlock', ['first', 'last'] as const);
  const preactShortcut = choice('preactShortcut', ['preactivated', 'input'] as const);
  const postNorm = o.postNorm === undefined ? preact : validate.boolean(o.postNorm, fn, 'postNorm');
  const bias = o.convBias === undefined ? false : validate.oneOf(o.convBias, fn, 'convBias', [false, true, 'auto'] as const);
  const padMode = choice('convPadding', ['explicit', 'same'] as const);
  const bnEpsilon = o.bnEpsilon === undefined ? 1e-5 : o.bnEpsilon;
  if (typeof bnEpsilon !== 'number' || !Number.isFinite(bnEpsilon) || bnEpsilon <= 0) {
    validate.invalid(bnEpsilon, fn, 'bnEpsilon', 'a finite number > 0');
  }
  const bnMomentum = o.bnMomentum === undefined ? 0.1 : o.bnMomentum;
  if (typeof bnMomentum !== 'number' || !(bnMomentum >= 0 && bnMomentum <= 1)) {
    validate.invalid(bnMomentum, fn, 'bnMomentum', 'a number in [0, 1]');
  }

  const stem = stemLayers(o.stem ?? 'imagenet', fn);
  const lastStem: unknown = stem[stem.length - 1];
  const skipFirstPreact =
    o.skipFirstPreact === undefined
      ? isPlainObject(lastStem) && lastStem.type === 'relu'
      : validate.boolean(o.skipFirstPreact, fn, 'skipFirstPreact');

  const stages = checkStages(o.stages, fn, { bottleneck, expansion, widthPerGroup, groups });

  const ctx: BuildContext = { fn, g: new SpecGraph(fn, shape), convBias: bias, bnEpsilon, bnMomentum };
  let x = buildStem(ctx, stem, preact && !skipFirstPreact);

  const base = {
    kind: block,
    groups,
    strideOn,
    shortcut,
    projectionNorm,
    strideShortcut,
    preactShortcut,
    convPadding: padMode,
    convBias: bias,
    bnEpsilon,
    bnMomentum,
  };
  x = buildStages(ctx, x, stages, seReduction === undefined ? base : { ...base, seReduction }, downsampleBlock, preact && skipFirstPreact);

  if (postNorm) x = ctx.g.relu('post_relu', ctx.g.batchNorm('post_bn', x, bnEpsilon, bnMomentum));
  const output = buildHead(ctx, o.head, classes, x);

  return {
    format: 'resnet-native/model',
    version: 1,
    name: specName,
    inputShape: shape,
    classes,
    layers: ctx.g.layers,
    output,
  };
}

/**
 * Builds the spec of any ResNet-family network from its options (see {@link ResNetOptions}).
 * Throws ResNetError('E_ARG') naming the option when an option is invalid, or when the
 * input shape is too small for the architecture.
 */
export function resnetSpec(options: ResNetOptions): ModelSpec {
  return build(options, 'resnetSpec');
}
