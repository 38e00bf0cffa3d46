/** JSON Schema validation with ajv, turning ajv's errors into one actionable LoomError. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { LoomError } from '../errors.ts';

export const SCHEMA_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'schemas');

const ajv = new Ajv2020({ allErrors: true, strict: false });
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

/** Picks the most specific ajv error: deepest path, and concrete keywords over combinators. */
function pickError(errors: ErrorObject[]): ErrorObject {
  const score = (e: ErrorObject) =>
    e.instancePath.split('/').length * 10 + (e.keyword === 'oneOf' || e.keyword === 'anyOf' || e.keyword === 'if' ? 0 : 5) + (e.keyword === 'additionalProperties' || e.keyword === 'required' ? 2 : 0);
  return errors.reduce((best, e) => (score(e) > score(best) ? e : best));
}

/** Throws a LoomError for the first (most specific) schema violation; `base` prefixes the pointer. */
export function assertValid(validate: ValidateFunction, data: unknown, file: string, base = '', what = 'document'): void {
  if (validate(data)) return;
  const e = pickError(validate.errors ?? []);
  const pointer = base + e.instancePath;
  const value = at(data, e.instancePath);
  const p = e.params as Record<string, unknown>;
  let message: string;
  let expected: string | undefined;
  let found: string | undefined;
  switch (e.keyword) {
    case 'additionalProperties': {
      const allowed = Object.keys((e.parentSchema as { properties?: object })?.properties ?? {});
      message = `unknown property "${String(p.additionalProperty)}" in ${what}`;
      expected = allowed.length ? `one of ${allowed.join(', ')}` : 'no properties';
      found = String(p.additionalProperty);
      return fail(pointer + '/' + String(p.additionalProperty));
    }
    case 'required':
      message = `missing required property "${String(p.missingProperty)}"`;
      break;
    case 'type':
      message = `wrong type`;
      expected = String(p.type);
      found = jsonType(value);
      break;
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
      expected = `a string matching ${String(p.pattern)}`;
      found = JSON.stringify(value);
      break;
    default:
      message = e.message ?? 'invalid value';
      found = value === undefined ? undefined : JSON.stringify(value)?.slice(0, 80);
  }
  fail(pointer);
  function fail(ptr: string): never {
    throw new LoomError({ code: 'E_SCHEMA', message, file, pointer: ptr || '/', expected, found });
  }
}
