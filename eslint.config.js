// Lint with type information: the rules that catch real mistakes in TypeScript (floating
// promises, unsafe `any`, assertions the types already make, throwing what is not an Error)
// need the type checker, so every folder is linted against tsconfig.check.json.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test-output/**', 'coverage/**', 'bench/results/**', 'data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      // One program for every folder. The project service would take tsconfig.json (src only)
      // for src and build a second program holding src again for the other folders.
      parserOptions: { project: './tsconfig.check.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Methods of a port are async although one backend answers synchronously (SQLite).
      '@typescript-eslint/require-await': 'off',
      // Preact's event attributes take async handlers; their promises are handled inside.
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { attributes: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Passing a caught error on is rethrowing it, which only-throw-error allows for `throw` too.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      // An interface that only extends a library type gives it a name declarations can print.
      '@typescript-eslint/no-empty-object-type': ['error', { allowInterfaces: 'with-single-extends' }],
      // ws types a message as Buffer | ArrayBuffer | Buffer[]; with its default binaryType it
      // is always a Buffer, so `data.toString()` is text, never "[object ArrayBuffer]".
      '@typescript-eslint/no-base-to-string': ['error', { ignoredTypeNames: ['Error', 'RegExp', 'URL', 'URLSearchParams', 'ArrayBuffer'] }],
    },
  },
  {
    // Tests read frames off the wire as JSON: `any` there is the shape of the wire, checked by
    // the assertions that follow.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    // The few plain JavaScript files (this one, the benchmark's worker boot) are outside the
    // TypeScript project: the rules that need types do not apply to them.
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
