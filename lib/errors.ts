/** Codes carried by every ResNetError. */
export type ResNetErrorCode =
  'E_SHAPE' | 'E_ARG' | 'E_DTYPE' | 'E_DISPOSED' | 'E_ALLOC' | 'E_IO' | 'E_FORMAT' | 'E_DEVICE' | 'E_NAN' | 'E_BUSY' | 'E_NATIVE' | 'E_INTERNAL';

/**
 * The one error type resnet-native throws (or rejects with). `code` is stable and meant
 * for programs; `message` names the op and the shapes or values that were wrong.
 */
export class ResNetError extends Error {
  readonly code: ResNetErrorCode;

  constructor(code: ResNetErrorCode, message: string) {
    super(message);
    this.name = 'ResNetError';
    this.code = code;
  }
}
