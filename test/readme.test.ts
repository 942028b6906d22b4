// The README is a user's first contact: its quick start must run as written, and it must itself
// hold what an operator needs (issue 9), not only links to docs/.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { REPO_ROOT } from './helpers/run.js';

const README = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');

/** The shell block that follows `marker` in the README. */
function shellBlockAfter(marker: string): string {
  const at = README.indexOf(marker);
  expect(at, `README has "${marker}"`).toBeGreaterThan(-1);
  const m = /```sh\n([\s\S]*?)```/.exec(README.slice(at));
  expect(m, `a sh block after "${marker}"`).not.toBeNull();
  return m![1]!;
}

describe('README', () => {
  test('the quick start runs as written (from the repository root, its /tmp/hs-demo moved to a temporary directory)', ({ tmp }) => {
    const script = shellBlockAfter('then a first backup, a second one');
    expect(script).toContain('/tmp/hs-demo');
    // the quick start runs from a configuration file, the normal way to run hardsnap
    expect(script).toMatch(/cat > \/tmp\/hs-demo\/hardsnap\.yaml/);
    expect(script).toMatch(/^bin\/hardsnap --config \/tmp\/hs-demo\/hardsnap\.yaml backup/m);
    const env = { ...process.env };
    delete env.HARDSNAP_NOW; // the real clock, as on a fresh machine
    const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script.replaceAll('/tmp/hs-demo', path.join(tmp, 'hs-demo'))], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env,
    });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/^hf +docs\/docs\/a\.txt$/m);
    expect(r.stdout).toMatch(/restored\n$/);
    // ls -li: a.txt is one inode in both generations (and through last)
    const inodes = new Set([...r.stdout.matchAll(/^(\d+) -rw.*\/docs\/a\.txt$/gm)].map((m) => m[1]));
    expect(inodes.size).toBe(1);
  });

  test('the quick start installs and builds with one command and runs every test with another: npm run setup, npm run test:all (what .ci/run runs)', () => {
    const block = shellBlockAfter('## Quick start');
    expect(
      block
        .split('\n')
        .map((l) => l.replace(/#.*/, '').trim())
        .filter(Boolean),
    ).toEqual(['npm run setup', 'npm run test:all']);
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    // setup: the build prerequisites (as root), then npm install; test:all: the rest
    expect(pkg.scripts.setup).toBe('scripts/setup.sh');
    expect(fs.readFileSync(path.join(REPO_ROOT, 'scripts', 'setup.sh'), 'utf8')).toMatch(
      /^scripts\/prerequisites\.sh --install build\n[\s\S]*^exec npm install /m,
    );
    expect(pkg.scripts['test:all']).toBe('scripts/test-all.sh');
    expect(fs.readFileSync(path.join(REPO_ROOT, '.ci', 'run'), 'utf8')).toMatch(/^exec scripts\/test-all\.sh --clean$/m);
    const all = fs.readFileSync(path.join(REPO_ROOT, 'scripts', 'test-all.sh'), 'utf8');
    expect(all).toMatch(/^scripts\/prerequisites\.sh --install /m);
  });

  test.for([
    ['what it is and why', /^## Why$/m],
    ['the spool layout', /^## The spool$[\s\S]*last -> /m],
    ['a cron example', /```cron\n[\s\S]*hardsnap --config \/etc\/hardsnap\.yaml backup/],
    ['a systemd service and timer', /\[Service\][\s\S]*ExecStart=hardsnap --config \/etc\/hardsnap\.yaml backup[\s\S]*\[Timer\][\s\S]*OnCalendar=/],
    ['where npm installed hardsnap, and how to find it', /npm prefix -g[\s\S]*\/usr\/bin\/hardsnap[\s\S]*command -v hardsnap/],
    ['a BlueMind-style post-backup hook', /BlueMind[\s\S]*hooks:\n[\s\S]*post:[\s\S]*HARDSNAP_STATUS/],
    ['how a third-party backup system picks up last, and why link() changes ctime', /third-party[\s\S]*`link\(\)`[\s\S]*ctime[\s\S]*Bacula/],
    ['exit codes', /^## Exit codes$[\s\S]*\| 23 \|[\s\S]*\| 24 \|/m],
    ['restore recipes', /^## Restore recipes$[\s\S]*restore [\s\S]*--all[\s\S]*--path/m],
  ] as const)('holds %s itself', ([, re]) => {
    expect(README).toMatch(re);
  });
});

/** Every fenced code block of a Markdown file: [language, text]. */
function codeBlocks(md: string): [string, string][] {
  return [...md.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => [m[1]!, m[2]!]);
}

const DOCS = [
  README,
  ...fs
    .readdirSync(path.join(REPO_ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => fs.readFileSync(path.join(REPO_ROOT, 'docs', f), 'utf8')),
];

describe('README and docs/: the commands they show', () => {
  test('one form for the installed command: plain `hardsnap` (never /usr/local/bin/hardsnap or /usr/bin/hardsnap); every cron file sets a PATH that holds both', () => {
    for (const md of DOCS) {
      for (const [lang, block] of codeBlocks(md)) {
        expect(block, block).not.toMatch(/\/usr(\/local)?\/bin\/hardsnap\b/);
        if (lang === 'cron' || /\/etc\/cron\.d\//.test(block)) {
          if (!/^\S+ +\S+ +\S+ +\S+ +\S+ +root +.*\bhardsnap /m.test(block)) continue;
          expect(block, block).toMatch(/^PATH=(\S*:)?\/usr\/local\/bin:(\S*:)?\/usr\/bin(:\S*)?$/m);
        }
      }
    }
  });

  test('every hardsnap command line in the README names a command and options it has (checked against the command definitions)', () => {
    const r = spawnSync(path.join(REPO_ROOT, 'bin/hardsnap'), ['completion', '--json'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const model = JSON.parse(r.stdout) as {
      globals: { long?: string; short?: string }[];
      commands: { name: string; options: { long?: string; short?: string }[] }[];
    };
    const names = (o: { long?: string; short?: string }[]) => new Set(o.flatMap((x) => [x.long, x.short]).filter(Boolean));
    const globals = names(model.globals);
    let checked = 0;
    // the code blocks, and the commands in `code spans` of the prose
    const spans: [string, string][] = [...README.matchAll(/`((?:bin\/)?hardsnap [^`\n]+)`/g)].map((m) => ['', m[1]!]);
    for (const [lang, block] of [...codeBlocks(README), ...spans]) {
      if (!['sh', 'cron', 'ini', ''].includes(lang)) continue;
      // a command line may go on after a backslash at the end of a line
      for (const line of block.replace(/\\\n\s*/g, ' ').split('\n')) {
        const m = /(?:^|[\s=&;|(])(?:bin\/)?hardsnap((?: +[^\s#;&|>]+)*)/.exec(line.replace(/#.*$/, ''));
        if (!m) continue;
        const words = m[1]!.trim().split(/ +/).filter(Boolean);
        // the options before the command are the program's; the command is the first other word
        let i = 0;
        while (i < words.length && words[i]!.startsWith('-')) {
          expect(globals, `${line}: ${words[i]} before the command`).toContain(words[i]!.replace(/=.*$/, ''));
          i += ['--spool', '--host', '--config'].includes(words[i]!) ? 2 : 1;
        }
        const name = words[i];
        if (name === undefined || name === 'help' || /^[A-Z]+$/.test(name)) continue; // COMMAND: a placeholder
        const cmd = model.commands.find((c) => c.name === name);
        expect(cmd, `${line}: no command ${name}`).toBeDefined();
        const known = names(cmd!.options);
        for (const w of words.slice(i + 1)) {
          if (!w.startsWith('-') || w === '-') continue;
          expect(known, `${line}: ${name} has no option ${w}`).toContain(w.replace(/=.*$/, ''));
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(20);
  });
});

describe('README and docs/: the links between them', () => {
  /** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens. */
  const slug = (heading: string) =>
    heading
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}_\- ]/gu, '')
      .replace(/ /g, '-');
  const withoutFences = (md: string) => md.replace(/```[\s\S]*?```/g, '');
  const anchors = (md: string) => new Set([...withoutFences(md).matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => slug(m[1]!)));

  test('every relative link of README.md and docs/*.md names a file that exists, and a heading there for #anchor (docs are merged and renamed: issue 19)', () => {
    const files = [
      'README.md',
      ...fs
        .readdirSync(path.join(REPO_ROOT, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/${f}`),
    ];
    const broken: string[] = [];
    let checked = 0;
    for (const file of files) {
      const md = fs.readFileSync(path.join(REPO_ROOT, file), 'utf8');
      // links in prose only: not in code blocks or `code spans`
      const prose = withoutFences(md).replace(/`[^`\n]*`/g, '');
      for (const [, target] of prose.matchAll(/\[[^\]]*\]\(([^)\s]+)\)/g)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target!)) continue; // https:, mailto:
        const [rel, frag] = target!.split('#') as [string, string | undefined];
        const dest = rel ? path.join(REPO_ROOT, path.dirname(file), rel) : path.join(REPO_ROOT, file);
        checked++;
        if (!fs.existsSync(dest)) broken.push(`${file}: ${target}: no such file`);
        else if (frag && dest.endsWith('.md') && !anchors(fs.readFileSync(dest, 'utf8')).has(frag)) broken.push(`${file}: ${target}: no such heading`);
      }
    }
    expect(broken).toEqual([]);
    expect(checked).toBeGreaterThan(30);
  });
});
