/**
 * Run records: `run.json` in every run folder says what ran (the resolved pipeline, the overrides,
 * the command line), with what (loom version and git commit, backend, Node) and how it went
 * (status, start and end). It is written atomically when a run starts and again when it ends, and
 * it decides what may run into a folder: a finished run is not overwritten, and a resume must use
 * the configuration the run started with (`--force` overrides both).
 */
import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isLoomError, LoomError } from '../../compiler/errors.ts';
import { parseJsonText, tryReadUntrusted } from '../../compiler/frontend/files.ts';
import { packageRoot, packageVersion } from '../../compiler/package-root.ts';
import { assertValid, schemaValidator } from '../../compiler/frontend/schema.ts';
import { outputError, outputPath, writeFileAtomic } from '../fs.ts';
import { configDiff, type PipelineConfig } from './config.ts';
import type { ProgressInfo } from './progress.ts';

/**
 * What a caller controls of a training run, whichever driver runs it (a pipeline's or a program's):
 * the output folder, resuming, stopping, and where progress goes.
 */
export interface RunControl {
  outDir: string;
  resume?: boolean;
  /** Start over in a folder that holds a finished run or a checkpoint, or resume with another configuration. */
  force?: boolean;
  /** For run.json: the `--set` overrides the file was loaded with, and the command line. */
  overrides?: readonly string[];
  invocation?: Invocation;
  /** Stop (with a checkpoint) after this many iterations of this invocation. */
  maxIterations?: number;
  /** Checked between iterations; when true the run saves a checkpoint and returns. */
  shouldStop?: () => boolean;
  onProgress?: (p: ProgressInfo) => void;
  /** What the run does before its first iteration ("compiling 7 graphs"), said before it starts. */
  onStage?: (text: string) => void;
  backend?: string;
  /** One-line notes for the user (stderr in the CLI), such as what a resume dropped from metrics.jsonl. */
  log?: (line: string) => void;
}

export const RUN_FILE = 'run.json';

export type RunStatus = 'running' | 'finished' | 'stopped' | 'failed';

/** The command line a run came from: the command, its positional arguments and its flags as parsed. */
export interface Invocation {
  command: string;
  args: string[];
  flags: Record<string, unknown>;
}

/** What a run record needs of a configuration: a pipeline's, or a program pipeline's (runtime/program). */
export type RecordedConfig = { seed: number } & ({ pipeline: string } | { program: string });

export interface RunRecord<C extends RecordedConfig = PipelineConfig> {
  format: 'loom-run';
  version: 1;
  status: RunStatus;
  pipeline: string;
  seed: number;
  /** The pipeline as it runs: after `extends`, `--set`, `--env`, `--seed`, `--steps`, with defaults filled in. */
  config: C;
  /** The `--set PATH=VALUE` overrides, in order. */
  overrides: string[];
  invocation: Invocation | null;
  loom: { version: string | null; commit?: string };
  backend: string;
  node: string;
  /** ISO 8601 times of this invocation; `ended` once it ends. */
  started: string;
  ended?: string;
  /** Where a resumed run picked up. */
  resumed_from?: { iteration: number; global_step: number };
  iterations?: number;
  global_step?: number;
  /** Why a failed run failed. */
  error?: { code: string; message: string };
}

const HEX = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

/** Reads a small git metadata file; anything unusual (absent, large, special, unreadable) is null. */
function gitFile(path: string): string | null {
  try {
    return tryReadUntrusted(path, { what: 'git file', maxBytes: 1 << 20 }) ?? null;
  } catch {
    return null;
  }
}

/**
 * The commit checked out in `root`, read from `.git` without running git: HEAD, the ref it names
 * (loose or packed), in a plain checkout or a worktree (`.git` a file naming the git folder).
 */
export function gitCommit(root: string): string | undefined {
  let gitDir = join(root, '.git');
  const link = /^gitdir: (.+)$/m.exec(gitFile(gitDir) ?? '');
  if (link) gitDir = resolve(root, link[1]!.trim());
  const head = gitFile(join(gitDir, 'HEAD'))?.trim();
  if (!head) return undefined;
  if (HEX.test(head)) return head;
  const ref = /^ref: (refs\/[A-Za-z0-9._\/-]+)$/.exec(head)?.[1];
  if (!ref || ref.split('/').includes('..')) return undefined;
  const common = gitFile(join(gitDir, 'commondir'));
  const dirs = [gitDir, ...(common ? [resolve(gitDir, common.trim())] : [])];
  for (const d of dirs) {
    const loose = gitFile(join(d, ref))?.trim();
    if (loose && HEX.test(loose)) return loose;
  }
  for (const d of dirs)
    for (const line of (gitFile(join(d, 'packed-refs')) ?? '').split('\n')) {
      const [sha, name] = line.trim().split(' ');
      if (name === ref && sha && HEX.test(sha)) return sha;
    }
  return undefined;
}

let provenance: RunRecord['loom'] | undefined;

/** loom's package version and, in a git checkout, its commit. */
export function loomProvenance(): RunRecord['loom'] {
  if (!provenance) {
    const version = packageVersion() || null;
    const commit = gitCommit(packageRoot());
    provenance = { version, ...(commit ? { commit } : {}) };
  }
  return provenance;
}

/** The run record of `dir`, or null when it has none; an unreadable or malformed one is an error naming it. */
export function readRunRecord<C extends RecordedConfig = PipelineConfig>(dir: string): RunRecord<C> | null {
  const file = outputPath(dir, RUN_FILE);
  const text = tryReadUntrusted(file, { what: 'run record' });
  if (text === undefined) return null;
  const json = parseJsonText(text, file);
  assertValid(schemaValidator('run.schema.json'), json, file, '', 'run record');
  return json as RunRecord<C>;
}

export function writeRunRecord(dir: string, record: RunRecord<RecordedConfig>): void {
  writeFileAtomic(outputPath(dir, RUN_FILE), JSON.stringify(record, null, 2) + '\n');
}

export interface RunFolderOptions {
  resume?: boolean;
  force?: boolean;
}

const FORCE_HINT = (dir: string) => `add --force to start over in ${dir}, or choose another folder with --out`;

/**
 * Refuses what would spoil the run in `dir`: starting afresh over a finished run or over a
 * checkpoint (use --resume, or --force to start over), and resuming with a configuration other
 * than the one run.json records (the differences are listed; --force resumes anyway). Writes nothing.
 */
export function checkRunFolder<C extends RecordedConfig = PipelineConfig>(dir: string, cfg: C, opts: RunFolderOptions): RunRecord<C> | null {
  if (opts.force) {
    try {
      return readRunRecord<C>(dir);
    } catch (e) {
      // A broken record is replaced when forced.
      if (isLoomError(e)) return null;
      throw e;
    }
  }
  const file = outputPath(dir, RUN_FILE);
  const prior = readRunRecord<C>(dir);
  if (opts.resume) {
    const diff = prior ? configDiff(prior.config, cfg) : [];
    if (diff.length)
      throw new LoomError({
        code: 'E_USAGE',
        message: `--resume: the configuration differs from the one the run in ${dir} started with (${diff.length} setting${diff.length > 1 ? 's' : ''})`,
        file,
        // One line: printed errors escape line breaks inside a field.
        found: `recorded -> now: ${diff.join('; ')}`,
        hint: 'resume with the same pipeline and flags, or add --force to resume with these settings anyway',
      });
    return prior;
  }
  const ckpt = outputPath(dir, 'checkpoint.json');
  if (prior?.status === 'finished' || existsSync(ckpt))
    throw new LoomError({
      code: 'E_USAGE',
      message: prior?.status === 'finished' ? `${dir} holds a finished run of ${prior.pipeline}` : `${dir} holds a checkpoint of an earlier run`,
      file: prior?.status === 'finished' ? file : ckpt,
      hint: `add --resume to continue it, or ${FORCE_HINT(dir)}`,
    });
  return prior;
}

/** Removes the checkpoint of an earlier run, so that a run started over cannot be resumed from it. */
export function removeCheckpoint(dir: string): void {
  const ckpt = outputPath(dir, 'checkpoint.json');
  try {
    rmSync(ckpt, { force: true });
  } catch (e) {
    throw outputError(e, 'remove', ckpt);
  }
}

/** The record a run writes when it starts. */
export function startRecord<C extends RecordedConfig>(cfg: C, o: { backend: string; overrides?: readonly string[]; invocation?: Invocation | null; resumedFrom?: { iteration: number; global_step: number } }): RunRecord<C> {
  return {
    format: 'loom-run',
    version: 1,
    status: 'running',
    pipeline: 'pipeline' in cfg ? cfg.pipeline : cfg.program,
    seed: cfg.seed,
    config: cfg,
    overrides: [...(o.overrides ?? [])],
    invocation: o.invocation ?? null,
    loom: loomProvenance(),
    backend: o.backend,
    node: process.version,
    started: new Date().toISOString(),
    ...(o.resumedFrom ? { resumed_from: o.resumedFrom } : {}),
  };
}

/** The record a run writes when it ends: its status, end time and progress, and the error of a failed run. */
export function endRecord<C extends RecordedConfig>(r: RunRecord<C>, status: Exclude<RunStatus, 'running'>, progress: { iterations: number; global_step: number }, error?: unknown): RunRecord<C> {
  const err = error === undefined ? undefined : isLoomError(error) ? { code: error.code, message: error.info.message } : { code: 'internal', message: String((error as Error)?.message ?? error) };
  return { ...r, status, ended: new Date().toISOString(), iterations: progress.iterations, global_step: progress.global_step, ...(err ? { error: err } : {}) };
}
