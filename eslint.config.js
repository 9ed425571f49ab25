import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.cache/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: {
        // Type-aware lint (issue 14): tsconfig.json covers the TypeScript in bin, src, harness, scripts, fixtures
        // and test; vitest.config.ts is outside it and uses the default project.
        projectService: { allowDefaultProject: ['vitest.config.ts'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
      // ignoreVoid off: a deliberate fire-and-forget (`void p`) still needs a rejection handler.
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: false }],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      // A `default:` arm counts as exhaustive: ours are deliberate catch-alls (tarName's plain entries, §1.4's
      // ignored annotation values, V2 inodes without data).
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true },
      ],
    },
  },
  {
    // Plain JavaScript (this file, loader hooks) is in no tsconfig and not type-checked by tsc: lint it without types.
    files: ['**/*.{js,mjs,cjs}'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // Issue 14: more than four parameters take one named-options object instead.
    files: ['src/**/*.ts', 'harness/**/*.ts'],
    rules: { 'max-params': ['error', 4] },
  },
);
