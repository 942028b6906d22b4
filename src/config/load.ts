/**
 * Reads a `--config` file into a `Config`, before anything runs. Every error is one line
 * `FILE:LINE:COL: key.path: what is wrong`, like a compiler's, so an editor can jump to it and a
 * cron mail says exactly what to fix. YAML syntax errors keep the yaml package's own position;
 * semantic ones (schema.ts) point at the offending node. All problems are reported at once.
 */
import { fs } from '../fs/disk.js';
import { isScalar, LineCounter, parseDocument, type YAMLError } from 'yaml';
import { errnoCode, UsageError } from '../core/errors.js';
import { validateConfig, type Config, type ConfigProblem } from './schema.js';
import { bytesOfArg, firstInvalidUtf8, hasRawBytes, showArg } from '../paths/arg-text.js';

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

/**
 * `file` is the --config argument as arg text (src/paths/arg-text.ts): a name that is not UTF-8
 * is read by its bytes and shown escaped. The file itself must be UTF-8: YAML is text, and a
 * byte that is not UTF-8 would silently become U+FFFD (a spool or source path that is not the
 * one written); such a file is refused with the position of that byte.
 */
export function loadConfig(file: string): Config {
  const shown = showArg(file);
  let data: Buffer;
  try {
    data = fs.readFileSync(hasRawBytes(file) ? bytesOfArg(file) : file);
  } catch (err) {
    const code = errnoCode(err) ?? 'EIO';
    throw new ConfigError(shown, [`${shown}: cannot read config file (${code}); check the --config path and its permissions`]);
  }
  const text = data.toString('utf8');
  const bad = firstInvalidUtf8(data);
  if (bad >= 0) {
    const before = data.subarray(0, bad).toString('utf8');
    const line = before.split('\n').length;
    const col = before.length - before.lastIndexOf('\n');
    throw new ConfigError(shown, [
      `${shown}:${line}:${col}: the byte 0x${data[bad]!.toString(16)} is not UTF-8: a configuration is UTF-8 text (give a path that is not UTF-8 on the command line: --spool, --part NAME=PATH)`,
    ]);
  }
  return parseConfig(text, shown);
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
    throw new ConfigError(
      file,
      yamlErrors.slice(0, MAX_PROBLEMS).map((e) => oneLine(`${where(e.pos[0])}: ${yamlMessage(e)}`)),
    );
  }

  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) {
    throw new ConfigError(file, [`${where(0)}: config is empty; see "hardsnap init" for an example`]);
  }

  const { config, problems } = validateConfig(doc);
  if (problems.length > 0) throw new ConfigError(file, [...problems].sort(byOffset).slice(0, MAX_PROBLEMS).map(format));
  return config;

  function format(p: ConfigProblem): string {
    return oneLine(p.keyPath ? `${where(p.offset)}: ${p.keyPath}: ${p.message}` : `${where(p.offset)}: ${p.message}`);
  }
}

function byOffset(a: ConfigProblem, b: ConfigProblem): number {
  return a.offset - b.offset;
}

/** Control characters (a newline in a quoted key or value) escaped as \xHH: one problem, one line. */
function oneLine(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
