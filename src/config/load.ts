/**
 * Reads a `--config` file into a `Config`, before anything runs. Every error is one line
 * `FILE:LINE:COL: key.path: what is wrong`, like a compiler's, so an editor can jump to it and a
 * cron mail says exactly what to fix. YAML syntax errors keep the yaml package's own position;
 * semantic ones (schema.ts) point at the offending node. All problems are reported at once.
 */
import { readFileSync } from 'node:fs';
import { isScalar, LineCounter, parseDocument, type YAMLError } from 'yaml';
import { errnoCode, UsageError } from '../core/errors.js';
import { validateConfig, type Config, type Problem } from './schema.js';

/** A config that cannot be used; `problems` holds one `FILE:LINE:COL: ...` line each. */
export class ConfigError extends UsageError {
  readonly problems: string[];

  constructor(file: string, problems: string[]) {
    super(problems.join('\n'), { path: file, code: 'ECONFIG' });
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Reports beyond this many add nothing but scroll. */
const MAX_PROBLEMS = 20;

export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = errnoCode(err) ?? 'EIO';
    throw new ConfigError(file, [`${file}: cannot read config file (${code}); check the --config path and its permissions`]);
  }
  return parseConfig(text, file);
}

/** Rewordings of yaml messages that speak of its API rather than of the file. */
function yamlMessage(err: YAMLError): string {
  switch (err.code) {
    case 'MULTIPLE_DOCS':
      return 'a config is one YAML document; remove the second "---" and what follows, or merge them';
    case 'DUPLICATE_KEY':
      return 'duplicate key; each key may appear once in a mapping';
    default:
      return err.message;
  }
}

export function parseConfig(text: string, file: string): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const where = (offset: number) => {
    const { line, col } = lines.linePos(offset);
    return `${file}:${line}:${col}`;
  };

  // Warnings (such as an unknown !tag) are errors here: the file would not mean what it says.
  const yamlErrors = [...doc.errors, ...doc.warnings].sort((a, b) => a.pos[0] - b.pos[0]);
  if (yamlErrors.length > 0) {
    throw new ConfigError(file, yamlErrors.slice(0, MAX_PROBLEMS).map((e) => oneLine(`${where(e.pos[0])}: ${yamlMessage(e)}`)));
  }

  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) {
    throw new ConfigError(file, [`${where(0)}: config is empty; see "hardsnap init" for an example`]);
  }

  const { config, problems } = validateConfig(doc);
  if (problems.length > 0) throw new ConfigError(file, [...problems].sort(byOffset).slice(0, MAX_PROBLEMS).map(format));
  return config;

  function format(p: Problem): string {
    return oneLine(p.keyPath ? `${where(p.offset)}: ${p.keyPath}: ${p.message}` : `${where(p.offset)}: ${p.message}`);
  }
}

function byOffset(a: Problem, b: Problem): number {
  return a.offset - b.offset;
}

/** Control characters (a newline in a quoted key or value) escaped as \xHH: one problem, one line. */
function oneLine(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
