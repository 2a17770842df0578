// The JupyterLab extension template's Jest config: ts-jest for TypeScript, babel for the
// ES modules JupyterLab ships, a jsdom environment. Tests: labextension/src/__tests__/*.spec.ts.
const jestJupyterLab = require('@jupyterlab/testutils/lib/jest-config');

const esModules = [
  '@codemirror',
  '@jupyter/ydoc',
  '@jupyterlab/',
  'lib0',
  'nanoid',
  'vscode-ws-jsonrpc',
  'y-protocols',
  'y-websocket',
  'yjs'
].join('|');

const baseConfig = jestJupyterLab(__dirname);

module.exports = {
  ...baseConfig,
  automock: false,
  reporters: ['default'],
  collectCoverageFrom: ['labextension/src/**/*.{ts,tsx}', '!labextension/src/**/*.d.ts'],
  coverageReporters: ['lcov', 'text'],
  testRegex: 'labextension/src/.*/.*.spec.ts[x]?$',
  // Only the sources: the repository root also holds the venv (.venv, with JupyterLab's own
  // package.json files) and the build output, which Jest would otherwise crawl.
  roots: ['<rootDir>/labextension/src'],
  modulePathIgnorePatterns: ['<rootDir>/.venv/', '<rootDir>/src/nbtrace/labextension/'],
  transformIgnorePatterns: [`/node_modules/(?!${esModules}).+`]
};
