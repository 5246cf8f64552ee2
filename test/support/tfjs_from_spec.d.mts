// Types of tfjs_from_spec.mjs (a ModelSpec as a tfjs-layers model).
import type * as tfc from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { ModelSpec } from '../../lib/model/spec.js';

/** tfjs core ops plus the tfjs-layers API, e.g. `{ ...tfc, ...tfl }` (or the @tensorflow/tfjs union package). */
export type TfWithLayers = typeof tfc & typeof tfl;

/** A parameter as Model.parameters() lists it. */
export interface ParameterValues {
  name: string;
  shape: readonly number[];
  values: Float32Array;
}

/** Builds the tfjs-layers model of `spec`; its layers carry the spec's layer names. Throws 'unsupported: …' for what it cannot express. */
export declare function tfjsModelFromSpec(tf: TfWithLayers, spec: Readonly<ModelSpec>): tfl.LayersModel;

/** Our parameter names (conv1.weight, bn1.running_var, …) → the tfjs LayerVariables holding them. */
export declare function tfjsLayerVariables(tfModel: tfl.LayersModel, spec: Readonly<ModelSpec>): Map<string, tfl.LayerVariable>;

/** Our parameter names → the tf.Variables behind them (keys of tfjs gradient maps are `variable.name`). */
export declare function tfjsVariables(tfModel: tfl.LayersModel, spec: Readonly<ModelSpec>): Map<string, tfc.Variable>;

/** Copies every parameter (of a Model, or a list) into the tfjs model by name; throws on a missing name or a shape mismatch. */
export declare function copyWeightsToTfjs(
  tf: Pick<typeof tfc, 'tensor'>,
  source: { parameters(): Iterable<ParameterValues> } | Iterable<ParameterValues>,
  tfModel: tfl.LayersModel,
  spec: Readonly<ModelSpec>,
): void;
