/**
 * .ci/install-gpu-adapter.sh derives the backports entry from the machine's own Debian sources:
 * the release's main suite renamed, in both source formats, security and other suites left out.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const SCRIPT = join(import.meta.dirname, '..', '..', '.ci', 'install-gpu-adapter.sh');

function printSources(files: Record<string, string>, codename = 'bookworm'): { code: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'loom-apt-'));
  mkdirSync(join(dir, 'sources.list.d'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  writeFileSync(join(dir, 'os-release'), `ID=debian\nVERSION_CODENAME=${codename}\n`);
  const r = spawnSync('bash', [SCRIPT, '--print-sources'], { encoding: 'utf8', env: { ...process.env, APT_ETC: dir, OS_RELEASE: join(dir, 'os-release') } });
  return { code: r.status, out: r.stdout };
}

describe('.ci/install-gpu-adapter.sh --print-sources', () => {
  it('rewrites the deb822 stanza of the release suite to its backports, keeping the key, leaving security and other repositories out', () => {
    const r = printSources({
      'sources.list.d/debian.sources': [
        'Types: deb',
        '# a snapshot comment',
        'URIs: http://mirror.test/debian',
        'Suites: bookworm bookworm-updates',
        'Components: main',
        'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
        '',
        'Types: deb',
        'URIs: http://mirror.test/debian-security',
        'Suites: bookworm-security',
        'Components: main',
        '',
        'Types: deb-src',
        'URIs: http://mirror.test/debian',
        'Suites: bookworm',
        'Components: main',
        '',
      ].join('\n'),
      'sources.list.d/other.sources': 'Types: deb\nURIs: https://vendor.test/apt\nSuites: nodistro\nComponents: main\n',
      // The entry the script writes is not a source for itself.
      'sources.list.d/loom-backports.sources': 'Types: deb\nURIs: http://old.test/debian\nSuites: bookworm\nComponents: main\n',
    });
    expect(r.code).toBe(0);
    expect(r.out).toBe('Types: deb\nURIs: http://mirror.test/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n');
  });

  it('reads one-line entries, with their options, and ignores commented ones', () => {
    const r = printSources({
      'sources.list': [
        'deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://mirror.test/debian bookworm main contrib',
        'deb http://mirror.test/debian-security bookworm-security main',
        '# deb http://commented.test/debian bookworm main',
        'deb http://plain.test/debian bookworm main',
      ].join('\n'),
    });
    expect(r.code).toBe(0);
    expect(r.out).toBe(
      'Types: deb\nURIs: http://mirror.test/debian\nSuites: bookworm-backports\nComponents: main contrib\nSigned-By: /usr/share/keyrings/k.gpg\n\n' +
        'Types: deb\nURIs: http://plain.test/debian\nSuites: bookworm-backports\nComponents: main\n\n',
    );
  });
});
