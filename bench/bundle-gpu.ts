/**
 * Builds dist-gpu/, a self-contained copy of `npm run bench:gpu` for a GPU machine that may have
 * no package registry (and no checkout): carry the folder (or the .tar.gz beside it) over and run
 * `bash dist-gpu/run.sh`. Only Node >= 20 and the GPU's Vulkan driver are needed there (Linux x64).
 *
 *   dist-gpu/gpu.mjs            bench/gpu.ts and everything it imports (tfjs, the wasm and webgpu
 *                               backends, the compiler with ts-morph), one esbuild ES module
 *   dist-gpu/*.wasm             the tfjs wasm backend's binaries, found beside the module
 *   dist-gpu/node_modules/webgpu  Dawn's Node bindings: index.js and dist/linux-x64/dawn.node
 *   dist-gpu/lib/libvulkan.so.1 this machine's Vulkan loader, used only where the GPU machine has none
 *   dist-gpu/graphs, schemas    the graph files the benchmark loads and the schemas that check them
 *   dist-gpu/package.json       names the folder as tensorloom's root (schemas/, graphs/ resolve from it)
 *   dist-gpu/run.sh             lists the Vulkan drivers (ICDs) it finds, then runs the benchmark
 *
 *   npm run bundle:gpu [-- --out DIR] [-- --tar]     (--tar also writes DIR.tar.gz)
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';
import { benchArgs } from './args.ts';

const ROOT = join(import.meta.dirname, '..');
const values = benchArgs('usage: npm run bundle:gpu -- [--out DIR (default dist-gpu)] [--tar (also write DIR.tar.gz)]', {
  out: { type: 'string', default: join(ROOT, 'dist-gpu') },
  tar: { type: 'boolean' },
});
const OUT = resolve(values.out!);
/** What the run tool of a GPU session carries, and a sane size for a folder copied by hand. */
const LIMIT = 64 * 2 ** 20;
const require = createRequire(join(ROOT, 'package.json'));
const pkgDir = (name: string) => dirname(require.resolve(`${name}/package.json`));

rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });

// Bundled CommonJS code (typescript, the emscripten loaders) expects require and __dirname: an ES
// module has neither, so the banner makes them, relative to the bundle (where the .wasm files lie).
const banner = [
  "import { createRequire as __loomCreateRequire } from 'node:module';",
  "import { dirname as __loomDirname } from 'node:path';",
  "import { fileURLToPath as __loomFileURLToPath } from 'node:url';",
  'const require = __loomCreateRequire(import.meta.url);',
  'const __filename = __loomFileURLToPath(import.meta.url);',
  'const __dirname = __loomDirname(__filename);',
].join('\n');
await build({
  entryPoints: [join(ROOT, 'bench', 'gpu.ts')],
  outfile: join(OUT, 'gpu.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // ES module builds first: some packages' CommonJS builds are UMD wrappers whose requires esbuild cannot follow (jsonc-parser).
  mainFields: ['module', 'main'],
  // Dawn's bindings find dawn.node beside their own index.js: they stay a package of their own.
  external: ['webgpu'],
  banner: { js: banner },
  minifyWhitespace: true,
  logLevel: 'warning',
});

for (const f of readdirSync(join(pkgDir('@tensorflow/tfjs-backend-wasm'), 'dist')).filter((f) => f.endsWith('.wasm'))) cpSync(join(pkgDir('@tensorflow/tfjs-backend-wasm'), 'dist', f), join(OUT, f));

const webgpu = pkgDir('webgpu');
const dawnOut = join(OUT, 'node_modules', 'webgpu');
mkdirSync(join(dawnOut, 'dist', 'linux-x64'), { recursive: true });
for (const f of ['package.json', 'index.js', 'LICENSE.md']) cpSync(join(webgpu, f), join(dawnOut, f));
cpSync(join(webgpu, 'dist', 'linux-x64', 'dawn.node'), join(dawnOut, 'dist', 'linux-x64', 'dawn.node'));

// The Vulkan loader (not a driver): a GPU machine with only the driver's ICD still runs.
const loader = ['/usr/lib/x86_64-linux-gnu/libvulkan.so.1', '/usr/lib64/libvulkan.so.1', '/usr/lib/libvulkan.so.1'].find(existsSync);
if (loader) {
  mkdirSync(join(OUT, 'lib'));
  cpSync(realpathSync(loader), join(OUT, 'lib', 'libvulkan.so.1'));
} else process.stderr.write('bundle:gpu: no libvulkan.so.1 on this machine; the bundle will rely on the GPU machine\'s own Vulkan loader\n');

cpSync(join(ROOT, 'graphs'), join(OUT, 'graphs'), { recursive: true });
cpSync(join(ROOT, 'schemas'), join(OUT, 'schemas'), { recursive: true });
const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
writeFileSync(join(OUT, 'package.json'), JSON.stringify({ name: 'tensorloom', version, private: true, type: 'module', description: 'npm run bench:gpu, bundled (npm run bundle:gpu)' }, null, 2) + '\n');
cpSync(join(ROOT, 'bench', 'gpu-run.sh'), join(OUT, 'run.sh'));
chmodSync(join(OUT, 'run.sh'), 0o755);

function sizeOf(path: string): number {
  const s = statSync(path);
  return s.isDirectory() ? readdirSync(path).reduce((n, f) => n + sizeOf(join(path, f)), 0) : s.size;
}
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
const size = sizeOf(OUT);
const parts = ['gpu.mjs', join('node_modules', 'webgpu'), 'lib'].filter((p) => existsSync(join(OUT, p))).map((p) => `${p} ${mib(sizeOf(join(OUT, p)))}`);
process.stdout.write(`wrote ${OUT}: ${mib(size)} (${parts.join(', ')})\n`);
if (size > LIMIT) {
  process.stderr.write(`bundle:gpu: the bundle is ${mib(size)}, over the ${mib(LIMIT)} limit\n`);
  process.exit(1);
}
if (values.tar) {
  const tarball = `${OUT}.tar.gz`;
  execFileSync('tar', ['-czf', tarball, '-C', dirname(OUT), basename(OUT)]);
  process.stdout.write(`wrote ${tarball}: ${mib(statSync(tarball).size)}\n`);
}
