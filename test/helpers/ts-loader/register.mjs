/**
 * `node --import` this file to run TypeScript sources (a worker thread started from code that
 * vitest loaded from src/*.ts): registers hooks.mjs, which transpiles `.ts` on load.
 */
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url);
