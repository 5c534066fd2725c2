// A small strict JSON parser for checkpoint headers. JSON.parse silently keeps the last of two equal keys;
// a safetensors header with a tensor name twice is corrupt and must be reported, so we parse ourselves.
// Objects become Maps (no prototype surprises from keys like "__proto__").

export type Json = null | boolean | number | string | Json[] | JsonObject;
export type JsonObject = Map<string, Json>;

export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    /** Character offset of the problem. */
    readonly at: number,
    /** For duplicate keys: the key and the object depth (0 = top level). */
    readonly duplicate?: { key: string; depth: number },
  ) {
    super(message);
  }
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const MAX_DEPTH = 64;

export function parseJson(text: string): Json {
  let i = 0;
  const n = text.length;

  const fail = (msg: string, at = i): never => {
    throw new JsonSyntaxError(`${msg} at character ${at}`, at);
  };
  const ws = (): void => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };
  const describe = (at: number): string => (at >= n ? 'end of input' : `character ${JSON.stringify(text[at])}`);

  const str = (): string => {
    // at the opening quote
    i++;
    let out = '';
    let start = i;
    for (;;) {
      if (i >= n) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(start, i);
        i++;
        return out;
      }
      if (c < 0x20) fail('control character in string');
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(start, i);
      const e = text[i + 1];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const hex = text.slice(i + 2, i + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('invalid \\u escape');
          out += String.fromCharCode(parseInt(hex, 16));
          i += 4;
          break;
        }
        default:
          fail('invalid escape in string');
      }
      i += 2;
      start = i;
    }
  };

  const value = (depth: number): Json => {
    if (depth > MAX_DEPTH) fail('nesting too deep');
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: JsonObject = new Map();
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail(`expected a string key, found ${describe(i)}`);
        const at = i;
        const key = str();
        if (obj.has(key)) throw new JsonSyntaxError(`duplicate key ${JSON.stringify(key)} at character ${at}`, at, { key, depth });
        ws();
        if (text[i] !== ':') fail(`expected ':' after key, found ${describe(i)}`);
        i++;
        obj.set(key, value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail(`expected ',' or '}' in object, found ${describe(i)}`);
      }
    }
    if (c === '[') {
      i++;
      const arr: Json[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail(`expected ',' or ']' in array, found ${describe(i)}`);
      }
    }
    if (c === '"') return str();
    if (text.startsWith('true', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('false', i)) {
      i += 5;
      return false;
    }
    if (text.startsWith('null', i)) {
      i += 4;
      return null;
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (m) {
      i += m[0].length;
      return Number(m[0]);
    }
    return fail(`unexpected ${describe(i)}`);
  };

  const v = value(0);
  ws();
  if (i < n) fail(`unexpected ${describe(i)} after the JSON value`);
  return v;
}

export function isObject(v: Json | undefined): v is JsonObject {
  return v instanceof Map;
}

/** A short description of a JSON value's kind, for messages. */
export function kindOf(v: Json | undefined): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Map) return 'an object';
  return `a ${typeof v}`;
}
