// The generic ResNet builder: checked options → ModelSpec. Layer names: see builders.ts.
import { ResNetError } from '../errors.js';
import { isPlainObject } from '../validate.js';
import { type BlockConfig, SpecGraph, convBias, residualBlock } from './blocks.js';
import { type StemLayerOptions, type ResNetOptions, argError, checkKeys, int, oneOf, bool, size2, padding, inputShape, name, RESNET_KEYS, BLOCK_TYPES, IMAGENET_STEM, CIFAR_STEM } from './builder_options.js';
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
    if (!isPlainObject(d)) argError(fn, at, 'a stem layer object', d);
    const type = oneOf(fn, `${at}.type`, d.type, ['conv2d', 'batchNorm', 'relu', 'maxPool', 'avgPool', 'zeroPad'] as const);
    const own = d.name === undefined ? undefined : name(fn, `${at}.name`, d.name);
    switch (type) {
      case 'conv2d': {
        checkKeys(fn, `${at}.`, d, ['type', 'filters', 'kernelSize', 'strides', 'padding', 'useBias', 'name']);
        const next = stem[i + 1];
        const followedByBatchNorm = next === undefined ? firstBlockStartsWithBatchNorm : isPlainObject(next) && next.type === 'batchNorm';
        x = g.conv2d(own ?? defaultName('conv', true), x, {
          filters: int(fn, `${at}.filters`, d.filters, 1),
          kernelSize: size2(fn, `${at}.kernelSize`, d.kernelSize, 1),
          strides: d.strides === undefined ? [1, 1] : size2(fn, `${at}.strides`, d.strides, 1),
          padding: d.padding === undefined ? 'valid' : padding(fn, `${at}.padding`, d.padding),
          useBias: d.useBias === undefined ? convBias(ctx.convBias, followedByBatchNorm) : bool(fn, `${at}.useBias`, d.useBias),
        });
        break;
      }
      case 'batchNorm':
        checkKeys(fn, `${at}.`, d, ['type', 'name']);
        x = g.batchNorm(own ?? defaultName('bn', true), x, ctx.bnEpsilon, ctx.bnMomentum);
        break;
      case 'relu':
        checkKeys(fn, `${at}.`, d, ['type', 'name']);
        x = g.relu(own ?? defaultName('relu', false), x);
        break;
      case 'maxPool':
      case 'avgPool': {
        checkKeys(fn, `${at}.`, d, ['type', 'poolSize', 'strides', 'padding', 'name']);
        const poolSize = size2(fn, `${at}.poolSize`, d.poolSize, 1);
        x = g.pool(
          type,
          own ?? defaultName(type === 'maxPool' ? 'maxpool' : 'stem_avgpool', false),
          x,
          poolSize,
          d.strides === undefined ? poolSize : size2(fn, `${at}.strides`, d.strides, 1),
          d.padding === undefined ? 'valid' : padding(fn, `${at}.padding`, d.padding),
        );
        break;
      }
      case 'zeroPad': {
        checkKeys(fn, `${at}.`, d, ['type', 'padding', 'name']);
        const p = padding(fn, `${at}.padding`, d.padding);
        if (typeof p === 'string') argError(fn, `${at}.padding`, 'an integer ≥ 0 or [top, bottom, left, right]', p);
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
    head === undefined || head === 'global' ? {} : isPlainObject(head) ? head : argError(fn, 'head', "'global' or a head object", head);
  checkKeys(fn, 'head.', h, ['pool', 'hidden', 'useBias']);
  const useBias = h.useBias === undefined ? true : bool(fn, 'head.useBias', h.useBias);
  const pool = h.pool ?? 'global';
  if (pool === 'global') {
    x = g.globalAvgPool('avgpool', x);
  } else if (pool === 'flatten') {
    x = g.flatten('flatten', x);
  } else if (isPlainObject(pool)) {
    checkKeys(fn, 'head.pool.', pool, ['type', 'poolSize', 'strides', 'padding']);
    const type = oneOf(fn, 'head.pool.type', pool.type, ['avgPool', 'maxPool'] as const);
    const poolSize = size2(fn, 'head.pool.poolSize', pool.poolSize, 1);
    x = g.pool(
      type,
      type === 'avgPool' ? 'avgpool' : 'head_maxpool',
      x,
      poolSize,
      pool.strides === undefined ? poolSize : size2(fn, 'head.pool.strides', pool.strides, 1),
      pool.padding === undefined ? 'valid' : padding(fn, 'head.pool.padding', pool.padding),
    );
    x = g.flatten('flatten', x);
  } else {
    argError(fn, 'head.pool', "'global', 'flatten' or a pool window object", pool);
  }
  const hidden = h.hidden ?? [];
  if (!Array.isArray(hidden)) argError(fn, 'head.hidden', 'an array of unit counts', hidden);
  hidden.forEach((units: unknown, k) => {
    x = g.dense(`fc_hidden${k + 1}`, x, int(fn, `head.hidden[${k}]`, units, 1), useBias);
    x = g.relu(`fc_hidden${k + 1}_relu`, x);
  });
  return g.dense('fc', x, classes, useBias);
}

export function build(options: ResNetOptions, fn: string): ModelSpec {
  if (!isPlainObject(options)) argError(fn, 'options', 'an object', options);
  const o = options as unknown as Record<string, unknown>;
  checkKeys(fn, '', o, RESNET_KEYS);
  /** An enumerated option; the first value is its default. */
  const choice = <T extends string>(option: string, values: readonly T[]): T =>
    o[option] === undefined ? values[0] : oneOf(fn, option, o[option], values);

  const specName = o.name === undefined ? 'resnet' : name(fn, 'name', o.name);
  const classes = int(fn, 'classes', o.classes, 1);
  const shape = o.inputShape === undefined ? ([224, 224, 3] as [number, number, number]) : inputShape(fn, o.inputShape);
  const block = oneOf(fn, 'block', o.block, BLOCK_TYPES);
  const preact = block === 'preactBasic' || block === 'preactBottleneck';
  const bottleneck = block === 'bottleneck' || block === 'preactBottleneck';

  const groups = o.groups === undefined ? 1 : int(fn, 'groups', o.groups, 1);
  const widthPerGroup = o.widthPerGroup === undefined ? 64 : int(fn, 'widthPerGroup', o.widthPerGroup, 1);
  if (!bottleneck && (groups !== 1 || widthPerGroup !== 64)) {
    throw new ResNetError(
      'E_ARG',
      `${fn}: groups and widthPerGroup apply to bottleneck blocks; block '${block}' needs groups 1 and widthPerGroup 64, ` +
        `got groups ${groups}, widthPerGroup ${widthPerGroup}`,
    );
  }
  const expansion = o.expansion === undefined ? (bottleneck ? 4 : 1) : int(fn, 'expansion', o.expansion, 1);
  let seReduction: number | undefined;
  if (o.se !== undefined) {
    if (!isPlainObject(o.se)) argError(fn, 'se', 'an object { reduction }', o.se);
    checkKeys(fn, 'se.', o.se, ['reduction']);
    seReduction = int(fn, 'se.reduction', o.se.reduction, 1);
  }
  const shortcut = choice('shortcut', ['projection', 'zeroPad'] as const);
  const projectionNorm = o.projectionNorm === undefined ? !preact : bool(fn, 'projectionNorm', o.projectionNorm);
  const strideShortcut = choice('strideShortcut', ['projection', 'subsample'] as const);
  const strideOn = choice('strideOn', ['3x3', '1x1'] as const);
  const downsampleBlock = choice('downsampleBlock', ['first', 'last'] as const);
  const preactShortcut = choice('preactShortcut', ['preactivated', 'input'] as const);
  const postNorm = o.postNorm === undefined ? preact : bool(fn, 'postNorm', o.postNorm);
  const bias = o.convBias === undefined ? false : oneOf(fn, 'convBias', o.convBias, [false, true, 'auto'] as const);
  const padMode = choice('convPadding', ['explicit', 'same'] as const);
  const bnEpsilon = o.bnEpsilon === undefined ? 1e-5 : o.bnEpsilon;
  if (typeof bnEpsilon !== 'number' || !Number.isFinite(bnEpsilon) || bnEpsilon <= 0) {
    argError(fn, 'bnEpsilon', 'a finite number > 0', bnEpsilon);
  }
  const bnMomentum = o.bnMomentum === undefined ? 0.1 : o.bnMomentum;
  if (typeof bnMomentum !== 'number' || !(bnMomentum >= 0 && bnMomentum <= 1)) {
    argError(fn, 'bnMomentum', 'a number in [0, 1]', bnMomentum);
  }

  const stemOption = o.stem ?? 'imagenet';
  const stem: StemLayerOptions[] =
    stemOption === 'imagenet'
      ? IMAGENET_STEM
      : stemOption === 'cifar'
        ? CIFAR_STEM
        : Array.isArray(stemOption)
          ? (stemOption as StemLayerOptions[])
          : argError(fn, 'stem', "'imagenet', 'cifar' or an array of stem layers", stemOption);
  const lastStem: unknown = stem[stem.length - 1];
  const skipFirstPreact =
    o.skipFirstPreact === undefined ? isPlainObject(lastStem) && lastStem.type === 'relu' : bool(fn, 'skipFirstPreact', o.skipFirstPreact);

  if (!Array.isArray(o.stages) || o.stages.length === 0) {
    argError(fn, 'stages', 'a non-empty array of { blocks, width, stride? }', o.stages);
  }
  const stages = (o.stages as unknown[]).map((st, i) => {
    const at = `stages[${i}]`;
    if (!isPlainObject(st)) argError(fn, at, 'an object { blocks, width, stride?, expansion? }', st);
    checkKeys(fn, `${at}.`, st, ['blocks', 'width', 'stride', 'expansion']);
    const width = int(fn, `${at}.width`, st.width, 1);
    const e = st.expansion === undefined ? expansion : int(fn, `${at}.expansion`, st.expansion, 1);
    const inner = bottleneck ? Math.floor((width * widthPerGroup) / 64) * groups : width;
    if (inner < 1) {
      throw new ResNetError('E_ARG', `${fn}: ${at}.width ${width} with widthPerGroup ${widthPerGroup} gives a bottleneck of width 0`);
    }
    return {
      blocks: int(fn, `${at}.blocks`, st.blocks, 1),
      stride: st.stride === undefined ? (i === 0 ? 1 : 2) : int(fn, `${at}.stride`, st.stride, 1, 64),
      inner,
      out: width * e,
    };
  });

  const ctx: BuildContext = { fn, g: new SpecGraph(fn, shape), convBias: bias, bnEpsilon, bnMomentum };
  let x = buildStem(ctx, stem, preact && !skipFirstPreact);

  stages.forEach((st, i) => {
    for (let j = 0; j < st.blocks; j++) {
      const strided = downsampleBlock === 'first' ? j === 0 : j === st.blocks - 1;
      const cfg: BlockConfig = {
        kind: block,
        inner: st.inner,
        out: st.out,
        stride: strided ? st.stride : 1,
        groups,
        strideOn,
        shortcut,
        projectionNorm,
        strideShortcut,
        preactShortcut,
        skipPreact: preact && skipFirstPreact && i === 0 && j === 0,
        convPadding: padMode,
        convBias: bias,
        bnEpsilon,
        bnMomentum,
      };
      if (seReduction !== undefined) cfg.seReduction = seReduction;
      x = residualBlock(ctx.g, `layer${i + 1}.${j}`, x, cfg);
    }
  });

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

