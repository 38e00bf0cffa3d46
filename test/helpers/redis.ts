/**
 * A real redis-server on a free loopback port, for the queue tests: no persistence (no RDB, no
 * AOF), its working folder a temporary one removed after. Where redis-server is not installed,
 * `REDIS_MISSING` says why the tests skip (`.ci/run` installs it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const found = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
/** Null when redis-server can be started; otherwise the reason the tests that need it skip. */
export const REDIS_MISSING: string | null = found.error || found.status !== 0 ? 'redis-server is not on PATH (apt-get install redis-server; .ci/run installs it)' : null;

/** A port nothing listens on now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface RedisServer {
  port: number;
  url: string;
  stop(): Promise<void>;
}

/** Starts redis-server on a free loopback port (with `requirepass` when `password` is given) and waits until it accepts connections. */
export async function startRedis(opts: { password?: string } = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'loom-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  if (opts.password) args.push('--requirepass', opts.password);
  const proc: ChildProcess = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout!.on('data', (d) => (log += d));
  proc.stderr!.on('data', (d) => (log += d));
  try {
    await new Promise<void>((resolve, reject) => {
      const deadline = Date.now() + 20_000;
      let exited = false;
      const onExit = (code: number | null) => {
        exited = true;
        reject(new Error(`redis-server exited (${code}) before it was ready:\n${log}`));
      };
      proc.once('exit', onExit);
      const look = () => {
        if (exited) return;
        if (log.includes('Ready to accept connections')) {
          proc.off('exit', onExit);
          resolve();
        } else if (Date.now() > deadline) {
          proc.kill('SIGKILL');
          reject(new Error(`redis-server was not ready after 20 s:\n${log}`));
        } else setTimeout(look, 20);
      };
      look();
    });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
