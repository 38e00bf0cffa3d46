/** JSON Schema validation with ajv, turning ajv's errors into one actionable LoomError. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { LoomError, pointerToken } from '../errors.ts';
import { packagePath } from '../package-root.ts';
import { suggest } from '../suggest.ts';

export { suggest };

export const SCHEMA_DIR = packagePath('schemas');

// verbose: errors carry their parentSchema, which lists the allowed properties for messages.
const ajv = new Ajv2020({ allErrors: true, strict: false, verbose: true });
const compiled = new Map<string, ValidateFunction>();

export function schemaValidator(name: string): ValidateFunction {
  let v = compiled.get(name);
  if (!v) {
    const schema = JSON.parse(readFileSync(join(SCHEMA_DIR, name), 'utf8')) as object;
    v = ajv.compile(schema);
    compiled.set(name, v);
  }
  return v;
}

/** Validates an op's attributes object against its schema (unknown attributes are errors). */
const attrValidators = new WeakMap<object, ValidateFunction>();
export function attrValidator(schema: { properties: Record<string, object>; required?: string[] }): ValidateFunction {
  let v = attrValidators.get(schema);
  if (!v) {
    v = ajv.compile({ type: 'object', properties: schema.properties, required: schema.required ?? [], additionalProperties: false });
    attrValidators.set(schema, v);
  }
  return v;
}

const DEF_NAMES: Record<string, string> = { node: 'node', tensorSpec: 'input', paramSpec: 'param', initializer: 'initializer' };

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number' && Number.isInteger(v)) return 'integer';
  return typeof v;
}

function at(root: unknown, pointer: string): unknown {
  let cur: unknown = root;
  for (const raw of pointer.split('/').slice(1)) {
    const k = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/**
 * Picks the most specific ajv error: deepest path, and concrete keywords over combinators.
 * Inside a oneOf, the branches whose type does not even match the value (`type` errors, an
 * `enum` of strings for an object) are the least informative, so they rank last at their depth.
 */
function pickError(errors: ErrorObject[], data: unknown): ErrorObject {
  const mismatchedEnum = (e: ErrorObject) => {
    if (e.keyword !== 'enum') return false;
    const t = jsonType(at(data, e.instancePath)).replace('integer', 'number');
    return !((e.params as { allowedValues?: unknown[] }).allowedValues ?? []).some((v) => jsonType(v).replace('integer', 'number') === t);
  };
  const score = (e: ErrorObject) =>
    e.instancePath.split('/').length * 10 +
    (e.keyword === 'oneOf' || e.keyword === 'anyOf' || e.keyword === 'if' ? 0 : 5) +
    (e.keyword === 'additionalProperties' || e.keyword === 'required' ? 2 : 0) -
    (e.keyword === 'type' || mismatchedEnum(e) ? 4 : 0);
  return errors.reduce((best, e) => (score(e) > score(best) ? e : best));
}

/** Throws a LoomError for the first (most specific) schema violation; `base` prefixes the pointer. */
export function assertValid(validate: ValidateFunction, data: unknown, file: string, base = '', what = 'document'): void {
  if (validate(data)) return;
  const errors = validate.errors ?? [];
  const e = pickError(errors, data);
  const pointer = base + e.instancePath;
  const value = at(data, e.instancePath);
  const p = e.params as Record<string, unknown>;
  let message: string;
  let expected: string | undefined;
  let found: string | undefined;
  let hint: string | undefined;
  switch (e.keyword) {
    case 'additionalProperties': {
      const allowed = Object.keys((e.parentSchema as { properties?: object })?.properties ?? {});
      // The $defs entry the object is checked against ("node", "tensorSpec") says what it is.
      const defs = ((validate.schema as { $defs?: Record<string, unknown> }).$defs ?? {}) as Record<string, unknown>;
      const def = Object.keys(defs).find((k) => defs[k] === e.parentSchema);
      message = `unknown property "${String(p.additionalProperty)}" in ${def ? (DEF_NAMES[def] ?? def) : what}`;
      expected = allowed.length ? `one of ${allowed.join(', ')}` : 'no properties';
      found = String(p.additionalProperty);
      const s = suggest(found, allowed);
      if (s) hint = `did you mean "${s}"?`;
      return fail(pointer + '/' + pointerToken(String(p.additionalProperty)));
    }
    case 'required': {
      const prop = (e.parentSchema as { properties?: Record<string, object> } | undefined)?.properties?.[String(p.missingProperty)];
      message = `missing required property "${String(p.missingProperty)}"`;
      expected = `"${String(p.missingProperty)}": ${prop ? describeSchema(prop) : 'a value'}`;
      break;
    }
    case 'type': {
      // Every type the alternatives at this location accept (a oneOf of array | object, of string | number).
      const types = new Set<string>();
      for (const o of errors) if (o.keyword === 'type' && o.instancePath === e.instancePath) types.add(String((o.params as { type: unknown }).type));
      for (const o of errors)
        if (o.instancePath === e.instancePath && o.keyword === 'enum')
          types.add(`one of ${((o.params as { allowedValues: unknown[] }).allowedValues).map((x) => JSON.stringify(x)).join(', ')}`);
      message = `wrong type`;
      expected = [...types].join(' | ');
      found = value === null ? 'null' : `${JSON.stringify(value)?.slice(0, 60)} (${jsonType(value)})`;
      break;
    }
    case 'enum':
      message = `value not allowed`;
      expected = `one of ${(p.allowedValues as unknown[]).map((x) => JSON.stringify(x)).join(', ')}`;
      found = JSON.stringify(value);
      break;
    case 'const':
      message = `value not allowed`;
      expected = JSON.stringify(p.allowedValue);
      found = JSON.stringify(value);
      break;
    case 'pattern':
      message = `malformed name or reference ${JSON.stringify(value)}`;
      // The schema's description reads better than its regex where it has one.
      expected = (e.parentSchema as { description?: string } | undefined)?.description ?? `a string matching ${String(p.pattern)}`;
      found = JSON.stringify(value);
      // A schema may say why its pattern is what it is (a name that becomes a folder name).
      if (typeof (e.parentSchema as { 'x-hint'?: unknown } | undefined)?.['x-hint'] === 'string') hint = (e.parentSchema as { 'x-hint': string })['x-hint'];
      else if (typeof value === 'string' && /^\s*-?[0-9.]/.test(value))
        hint = /^\s*-?[0-9.]+([eE][-+]?[0-9]+)?\s*$/.test(value)
          ? 'names start with a letter or "_"; a number is written without quotes'
          : 'names start with a letter or "_"';
      else if (typeof value === 'string' && /[^A-Za-z0-9_./*]/.test(value)) hint = 'names use only letters, digits and "_"';
      break;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      message = `number out of range`;
      expected = `a number ${String(p.comparison)} ${String(p.limit)}`;
      found = JSON.stringify(value);
      break;
    case 'minProperties':
    case 'maxProperties':
      message = `${e.message ?? 'wrong number of properties'}`;
      expected = `${p.limit} propert${p.limit === 1 ? 'y' : 'ies'}${e.keyword === 'maxProperties' ? ' at most' : ' at least'}`;
      found = `${Object.keys(value as object).length}: ${Object.keys(value as object).join(', ')}`;
      break;
    default:
      message = e.message ?? 'invalid value';
      found = value === undefined ? undefined : JSON.stringify(value)?.slice(0, 80);
  }
  fail(pointer);
  function fail(ptr: string): never {
    throw new LoomError({ code: 'E_SCHEMA', message, file, pointer: ptr || '/', expected, found, hint });
  }
}

/** A short reading of a (sub)schema for "expected" lines: `one of "a", "b"`, `integer[]`, `integer | string`. */
export function describeSchema(schema: object): string {
  const s = schema as { enum?: unknown[]; const?: unknown; type?: string | string[]; items?: object; anyOf?: object[]; oneOf?: object[]; minimum?: number; $ref?: string };
  if (s.$ref) return s.$ref.split('/').pop() ?? 'value';
  if (s.enum) return `one of ${s.enum.map((x) => JSON.stringify(x)).join(', ')}`;
  if (s.const !== undefined) return JSON.stringify(s.const);
  const alts = s.anyOf ?? s.oneOf;
  if (alts) return alts.map(describeSchema).join(' | ');
  const type = Array.isArray(s.type) ? s.type.join(' | ') : s.type;
  if (type === 'array') return s.items ? `array of ${describeSchema(s.items)}` : 'array';
  if (type && s.minimum !== undefined) return `${type} >= ${s.minimum}`;
  return type ?? 'any value';
}
