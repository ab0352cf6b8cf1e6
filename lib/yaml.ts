// YAML from users (network tokens, Manifests entries) parsed with bounds. A parsed alias is a
// shared reference, cheap to build, but everything downstream (String(), JSON.stringify for an
// API request) expands it: ten aliases of ten aliases ... eight levels deep is 10^8 strings from
// 600 bytes. eemeli/yaml refuses excessive aliasing while it builds the value (maxAliasCount,
// weighted by the aliases inside each anchor) and, unlike js-yaml, does not apply `<<` merge keys
// (YAML 1.1, shallow copies that a small document can make quadratic) or turn dates into Date
// objects that JSON then rewrites. Unknown tags (!!set, !custom) are kept as plain values without
// a warning on stderr per parse (user input would fill the log).
import { parse, parseAllDocuments } from "yaml";

export class YamlError extends Error {}

export interface YamlLimits {
  /** longest text accepted, in UTF-8 bytes */
  maxBytes: number;
  /** as eemeli/yaml counts it: uses of aliases, each weighted by the aliases its anchor contains */
  maxAliasCount?: number;
}

const DEFAULT_ALIASES = 100;
/**
 * The parser recurses once per nesting level; near the stack's end V8 may abort the whole
 * process (seen: 10 KB of "- - - ..." killed it with "RegExpCompiler Allocation failed") instead
 * of throwing. ~900 levels overflowed here; real manifests nest ~20. Cheap bounds that need no parse:
 */
const MAX_COLUMN = 256; // block nesting: each level is at least one column further right
const MAX_FLOW_DEPTH = 128; // [ and { (counted in strings too: an over-estimate, never an under-estimate)

/** Where a line's content starts once indentation and compact "- " / "? " / ": " indicators are skipped. */
function contentColumn(line: string): number {
  let i = 0;
  while (i < line.length && (line[i] === " " || ("-?:".includes(line[i]) && (line[i + 1] === " " || line[i + 1] === undefined)))) i++;
  return i;
}

function checkBounds(text: string, limits: YamlLimits): void {
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > limits.maxBytes) throw new YamlError(`YAML is too large (${bytes} bytes, at most ${limits.maxBytes})`);
  let flow = 0;
  for (const line of text.split("\n")) {
    if (contentColumn(line) > MAX_COLUMN) throw new YamlError(`YAML is nested or indented too deeply (more than ${MAX_COLUMN} columns)`);
    for (const c of line) {
      if (c === "[" || c === "{") flow++;
      else if ((c === "]" || c === "}") && flow > 0) flow--;
      if (flow > MAX_FLOW_DEPTH) throw new YamlError(`YAML is nested too deeply (more than ${MAX_FLOW_DEPTH} levels of [ or {)`);
    }
  }
}

function explain(err: unknown): YamlError {
  const message = (err as Error)?.message ?? String(err);
  if (/resource exhaustion|Alias resolution is disabled/.test(message)) return new YamlError("YAML uses too many aliases (an alias expansion bomb?)");
  if (err instanceof RangeError) return new YamlError("YAML is nested too deeply");
  return new YamlError(message.split("\n")[0]);
}

/**
 * An alias inside its own anchor ("metadata: &m {self: *m}") builds a value that contains
 * itself: no JSON, and every walk of it loops. Nodes already seen whole are not walked twice,
 * so shared (not recursive) aliases cost one visit each.
 */
function refuseCycles(value: unknown, path = new Set<object>(), done = new WeakSet<object>()): void {
  if (typeof value !== "object" || value === null || done.has(value)) return;
  if (path.has(value)) throw new YamlError("YAML has an alias inside its own anchor (a value that contains itself)");
  path.add(value);
  for (const v of value instanceof Map ? value.values() : Object.values(value)) refuseCycles(v, path, done);
  path.delete(value);
  done.add(value);
}

/** One YAML document; throws YamlError with a one-line reason. */
export function parseYaml(text: string, limits: YamlLimits): unknown {
  checkBounds(text, limits);
  try {
    const value: unknown = parse(text, { maxAliasCount: limits.maxAliasCount ?? DEFAULT_ALIASES, prettyErrors: false, logLevel: "error" });
    refuseCycles(value);
    return value;
  } catch (err) {
    throw explain(err);
  }
}

/** Every document of a multi-document stream (`---`); throws YamlError with a one-line reason. */
export function parseYamlDocuments(text: string, limits: YamlLimits): unknown[] {
  checkBounds(text, limits);
  try {
    const docs = parseAllDocuments(text, { prettyErrors: false, logLevel: "error" }).map((doc) => {
      if (doc.errors.length > 0) throw doc.errors[0];
      return doc.toJS({ maxAliasCount: limits.maxAliasCount ?? DEFAULT_ALIASES }) as unknown;
    });
    refuseCycles(docs);
    return docs;
  } catch (err) {
    throw explain(err);
  }
}
