// Infers the request schema of a wrapped service from one example input: each
// top-level field of the example becomes a typed, shape-checked field, so a
// request of the wrong type or shape is refused with 422 before the model runs.

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export type FieldShape =
  | { kind: 'number' }
  | { kind: 'boolean' }
  | { kind: 'string' }
  | { kind: 'any' }
  | { kind: 'object' }
  | { kind: 'array'; length: number; items: FieldShape };

export interface InputField {
  /** Key in the JSON request. */
  name: string;
  /** A valid Python identifier for it (the alias is the JSON key when they differ). */
  py: string;
  shape: FieldShape;
  /** A file field: its OpenAPI schema keywords (contentEncoding, contentMediaType, x-mlship-file). */
  file?: Record<string, JsonValue>;
}

/** How a validated request becomes the model's input. */
export type InputMode =
  /** One row of numbers: scalar fields and flattened 1-D lists, in example order. */
  | 'tabular'
  /** The single field is one sample of an N-d tensor. */
  | 'tensor'
  /** The user's function receives the request as a dict. */
  | 'dict';

export class ExampleError extends Error {}

function shapeOf(value: JsonValue, where: string): FieldShape {
  if (value === null) return { kind: 'any' };
  if (typeof value === 'number') return { kind: 'number' };
  if (typeof value === 'boolean') return { kind: 'boolean' };
  if (typeof value === 'string') return { kind: 'string' };
  if (Array.isArray(value)) {
    if (value.length === 0) return { kind: 'array', length: 0, items: { kind: 'any' } };
    const items = value.map((v, i) => shapeOf(v, `${where}[${i}]`));
    const first = JSON.stringify(items[0]);
    if (items.some((s) => JSON.stringify(s) !== first)) {
      throw new ExampleError(`${where}: every element of a list must have the same type and shape`);
    }
    return { kind: 'array', length: value.length, items: items[0]! };
  }
  return { kind: 'object' };
}

const PY_KEYWORDS = new Set(
  'False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield model_config'.split(
    ' ',
  ),
);

export function pythonIdentifier(name: string, taken: Set<string>): string {
  let id = name.replace(/[^A-Za-z0-9_]/g, '_');
  if (!/^[A-Za-z_]/.test(id)) id = `f_${id}`;
  if (PY_KEYWORDS.has(id) || id.startsWith('model_')) id = `${id}_`;
  while (taken.has(id)) id = `${id}_`;
  taken.add(id);
  return id;
}

export function inferFields(example: JsonValue): InputField[] {
  if (example === null || typeof example !== 'object' || Array.isArray(example)) {
    throw new ExampleError(
      'the example input must be a JSON object such as {"features": [5.1, 3.5, 1.4, 0.2]}',
    );
  }
  const entries = Object.entries(example);
  if (entries.length === 0) throw new ExampleError('the example input has no fields');
  const taken = new Set<string>();
  return entries.map(([name, value]) => ({
    name,
    py: pythonIdentifier(name, taken),
    shape: shapeOf(value, name),
  }));
}

function isNumeric(shape: FieldShape): boolean {
  if (shape.kind === 'number' || shape.kind === 'boolean') return true;
  return shape.kind === 'array' && shape.length > 0 && isNumeric(shape.items);
}

/** How a model file's input is built from the fields (entry points always get a dict). */
export function inputModeFor(fields: InputField[], modelFile: boolean): InputMode {
  if (!modelFile) return 'dict';
  for (const f of fields) {
    if (!isNumeric(f.shape)) {
      throw new ExampleError(
        `field "${f.name}" is not numeric: a model file takes numbers; use --entry with your own predict function for other inputs`,
      );
    }
  }
  const only = fields[0]!;
  if (fields.length === 1 && only.shape.kind === 'array' && only.shape.items.kind === 'array')
    return 'tensor';
  for (const f of fields) {
    if (f.shape.kind === 'array' && f.shape.items.kind === 'array') {
      throw new ExampleError(
        `field "${f.name}" is nested: a tensor input must be the only field of the example`,
      );
    }
  }
  return 'tabular';
}

/** The pydantic type of a field, with exact list lengths (wrong shape → 422). */
export function pythonType(shape: FieldShape): string {
  switch (shape.kind) {
    case 'number':
      return 'float';
    case 'boolean':
      return 'bool';
    case 'string':
      return 'str';
    case 'any':
      return 'Any';
    case 'object':
      return 'dict[str, Any]';
    case 'array': {
      if (shape.length === 0) return 'list[Any]';
      const dims = arrayDims(shape);
      if (dims.length === 1) {
        return `Annotated[list[${pythonType(shape.items)}], Field(min_length=${shape.length}, max_length=${shape.length})]`;
      }
      // Nested lists: one shape check, short enough to read (and to format).
      let inner: FieldShape = shape;
      while (inner.kind === 'array') inner = inner.items;
      const type = `${'list['.repeat(dims.length)}${pythonType(inner)}${']'.repeat(dims.length)}`;
      return `Annotated[${type}, exact_shape((${dims.join(', ')}))]`;
    }
  }
}

/** The sizes of nested lists, outermost first: [[1, 2], [3, 4]] → [2, 2]. */
export function arrayDims(shape: FieldShape): number[] {
  const dims: number[] = [];
  let s = shape;
  while (s.kind === 'array' && s.length > 0) {
    dims.push(s.length);
    s = s.items;
  }
  return dims;
}

/** Whether a field needs the generated exact_shape() validator. */
export function needsShapeCheck(shape: FieldShape): boolean {
  return arrayDims(shape).length > 1;
}

/** Numbers of model inputs per row (tabular mode). */
export function rowWidth(fields: InputField[]): number {
  return fields.reduce((n, f) => n + (f.shape.kind === 'array' ? f.shape.length : 1), 0);
}
