// Types of prebuild-support.mjs, for the tests that import it.
export declare const MIN_GLIBC: string;
export declare function runtimeGlibc(): string | null;
export declare function maxGlibcRequired(bytes: Buffer): string | null;
export declare function compareVersions(a: string, b: string): number;
export declare function prebuildUnsupportedReason(
  system: { platform: string; arch: string; glibc: string | null },
  shipped: string[],
  binaryGlibc?: string | null,
): string | null;
