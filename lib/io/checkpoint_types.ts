// The options and trainer state of a checkpoint, apart from the code that reads and writes it,
// so that Model.save can name them without importing lib/io/checkpoint.ts (which imports Model).

/**
 * What a trainer needs to resume: its counters, its random state and anything else it keeps,
 * as long as JSON can hold it (extra fields are stored and returned too).
 */
export interface TrainingState {
  /** Epochs completed. */
  epoch: number;
  /** Optimizer steps taken. */
  step: number;
  /** The trainer's random generator state (shuffling, augmentation), in any JSON form. */
  rngState?: unknown;
  history?: unknown;
}

export interface SaveModelOptions {
  /** Save the optimizer's state and settings too (when the model is compiled). Default true. */
  optimizer?: boolean;
  /** The trainer's state, stored as JSON for loadCheckpoint. */
  training?: TrainingState;
}
