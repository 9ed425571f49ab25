import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.cache/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // Issue 14: more than four parameters take one named-options object instead.
    files: ['src/**/*.ts', 'harness/**/*.ts'],
    // Being rewritten in parallel (issue 14): the EROFS writer and OCI tree (src/composefs/) and the
    // HTTP layer (src/oci/registry/); drop these ignores once those land.
    ignores: ['src/composefs/**', 'src/oci/registry/**'],
    rules: { 'max-params': ['error', 4] },
  },
);
