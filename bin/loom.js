#!/usr/bin/env node
// Entry point of the `loom` command. It runs the compiled JavaScript in dist/ (built by
// `npm run build`, which `npm install` runs through `prepare`). In a checkout without dist/, or
// with LOOM_FROM_SOURCES=1, it runs the TypeScript sources through tsx instead (slower start-up).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../dist/cli/main.js', import.meta.url);
const fromSources = process.env.LOOM_FROM_SOURCES === '1' || !existsSync(fileURLToPath(compiled));
if (fromSources && process.env.LOOM_FROM_SOURCES !== '1')
  process.stderr.write('loom: dist/ is missing, running the TypeScript sources (run `npm run build` for a fast start)\n');
// `loom ... | head` closes the pipe early: stop quietly there, as other command-line tools do.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});
let main;
if (fromSources) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../cli/main.ts'));
} else {
  ({ main } = await import(compiled.href));
}
process.exitCode = await main(process.argv.slice(2));
