// ESLint (flat config) for the TypeScript in lib/ and test/.
// typescript-eslint's recommended rules (syntax only, no type information: fast), plus
// import-x/no-cycle as an error: lib/ must not have import cycles.
// Formatting is prettier's job (.prettierrc.json), not ESLint's.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { importX } from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

export default tseslint.config(
  {
    ignores: ['dist/**', 'build/**', 'build-*/**', 'prebuilds/**', 'node_modules/**', 'bench/results/**', 'test/fixtures/**', '.cudnn/**'],
  },
  {
    files: ['lib/**/*.ts', 'test/**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    plugins: { 'import-x': importX },
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
    },
    settings: {
      // Without these import-x reads only .js files when it follows imports, and sees no cycle.
      'import-x/extensions': ['.ts', '.mts', '.js', '.mjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts', '.mts'] },
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: 'tsconfig.test.json' })],
    },
    rules: {
      // An import cycle (a.ts imports b.ts imports a.ts, at any depth) is an error.
      // A dynamic import() that closes a cycle counts too (the design still has the cycle).
      'import-x/no-cycle': ['error', { ignoreExternal: true }],

      // Recommended rules the code does not pass yet (measured when this config was added):
      // warnings, so `npm run lint` fails on cycles only. Raise each to 'error' once its count is 0.
      '@typescript-eslint/no-unused-vars': 'warn',
      '@typescript-eslint/no-explicit-any': 'warn',
      '@typescript-eslint/no-unused-expressions': 'warn',
      '@typescript-eslint/no-this-alias': 'warn',
      'preserve-caught-error': 'warn',
      'no-regex-spaces': 'warn',
      'no-fallthrough': 'warn',
      'no-useless-assignment': 'warn',
    },
  },
);
