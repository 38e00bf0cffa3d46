/**
 * The folder tensorloom is installed in (the one holding its package.json), found from this
 * module's own location so that files shipped beside the code (schemas/, graphs/, profiles/)
 * resolve the same way from the TypeScript sources and from the compiled dist/.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

export function packageRoot(): string {
  if (root !== undefined) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    // The name check skips a package.json of some other package the sources may sit under.
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'tensorloom') return (root = dir);
    const up = dirname(dir);
    if (up === dir) throw new Error(`tensorloom: no package.json named "tensorloom" above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** A path inside the installed package, e.g. `packagePath('schemas')`. */
export function packagePath(...parts: string[]): string {
  return join(packageRoot(), ...parts);
}

/** The installed package's version, from its package.json. */
export function packageVersion(): string {
  return String((JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version?: unknown }).version ?? '');
}
