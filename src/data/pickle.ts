// A data-only unpickler for RefCOCO's `refs(*).p` (Python-2 cPickle, protocol 2, builtins only). It never executes
// anything: opcodes that import, call or build objects (GLOBAL, STACK_GLOBAL, REDUCE, BUILD, INST, OBJ, NEWOBJ, EXT*,
// PERSID, ...) are refused with the file, byte offset and opcode. Protocol 0-4 data opcodes are accepted so a
// re-pickled copy (Python 3) of the same lists/dicts still loads.
import { describeValue, KvlensInputError } from '../util/errors.js';
import { limit } from '../util/limits.js';

/** Values a refs pickle can hold. Tuples come back as arrays; dict keys are stringified (String(key)). */
export type PickleValue = null | boolean | number | bigint | string | Uint8Array | PickleValue[] | PickleDict;
export interface PickleDict { [key: string]: PickleValue }

const MARK = Symbol('mark');
type StackItem = PickleValue | typeof MARK;

const FORBIDDEN: Record<number, string> = {
  0x63: 'GLOBAL', 0x93: 'STACK_GLOBAL', 0x52: 'REDUCE', 0x62: 'BUILD', 0x69: 'INST', 0x6f: 'OBJ', 0x81: 'NEWOBJ',
  0x92: 'NEWOBJ_EX', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x50: 'PERSID', 0x51: 'BINPERSID',
  0x90: 'ADDITEMS', 0x91: 'FROZENSET', 0x8f: 'EMPTY_SET', 0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Python-2 `str` is bytes; RefCOCO text is ASCII/UTF-8. Decode UTF-8 when valid, else latin-1 (byte = code point). */
function py2StrToString(b: Uint8Array): string {
  try { return utf8Strict.decode(b); } catch { return Array.from(b, (c) => String.fromCharCode(c)).join(''); }
}

/** Little-endian two's-complement bytes -> bigint, in linear time (one hex parse, not a shift per byte). */
function bytesToBigIntLE(b: Uint8Array): bigint {
  if (b.length === 0) return 0n;
  let hex = '';
  for (let i = b.length - 1; i >= 0; i--) hex += (b[i] < 16 ? '0' : '') + b[i].toString(16);
  let v = BigInt(`0x${hex}`);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length); // two's complement
  return v;
}

function narrowInt(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Protocol-0 quoted string literal ('...' or "...") with the escapes repr() emits. */
function unquotePy2(lit: string, fail: (why: string) => never): string {
  const q = lit[0];
  if ((q !== "'" && q !== '"') || lit[lit.length - 1] !== q) fail(`STRING argument ${describeValue(lit)} is not quoted`);
  const body = lit.slice(1, -1);
  return body.replace(/\\(x[0-9a-fA-F]{2}|.)/g, (_m, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    return ({ n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"' } as Record<string, string>)[e] ?? `\\${e}`;
  });
}

export function unpickle(bytes: Uint8Array, path: string): PickleValue {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: StackItem[] = [];
  const memo = new Map<number, PickleValue>();
  let pos = 0;
  let opStart = 0;
  const fail = (why: string): never => { throw new KvlensInputError(`pickle: ${why} (byte offset ${opStart})`, path); };
  const need = (n: number): void => { if (pos + n > bytes.length) fail(`truncated: needs ${n} more byte(s) at offset ${pos}, file has ${bytes.length}`); };
  const take = (n: number): Uint8Array => { need(n); const s = bytes.subarray(pos, pos + n); pos += n; return s; };
  const u8 = (): number => { need(1); return bytes[pos++]; };
  const u16 = (): number => { need(2); const v = dv.getUint16(pos, true); pos += 2; return v; };
  const u32 = (): number => { need(4); const v = dv.getUint32(pos, true); pos += 4; return v; };
  const i32 = (): number => { need(4); const v = dv.getInt32(pos, true); pos += 4; return v; };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail('truncated: text argument has no newline');
    const s = py2StrToString(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): PickleValue => {
    const v = stack.pop();
    if (v === undefined) fail('stack underflow');
    if (v === MARK) fail('unexpected MARK on the stack');
    return v as PickleValue;
  };
  const top = (): PickleValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) fail('stack underflow');
    return v as PickleValue;
  };
  const popMark = (): PickleValue[] => {
    let k = stack.length - 1;
    while (k >= 0 && stack[k] !== MARK) k--;
    if (k < 0) fail('no MARK on the stack');
    const items = stack.splice(k + 1) as PickleValue[];
    stack.pop(); // the MARK
    return items;
  };
  const asList = (v: PickleValue, op: string): PickleValue[] => {
    if (!Array.isArray(v)) fail(`${op} target is not a list`);
    return v as PickleValue[];
  };
  const asDict = (v: PickleValue, op: string): PickleDict => {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) fail(`${op} target is not a dict`);
    return v as PickleDict;
  };
  const setItem = (d: PickleDict, k: PickleValue, v: PickleValue): void => {
    if (typeof k === 'object' && k !== null) fail('dict key is not a scalar');
    // An own data property even for "__proto__": a pickled key must never change the dict's prototype.
    Object.defineProperty(d, typeof k === 'string' ? k : String(k), { value: v, writable: true, enumerable: true, configurable: true });
  };
  const intBytes = (n: number): Uint8Array => {
    if (n > limit('PICKLE_INT_BYTES')) fail(`a ${n}-byte integer exceeds the limit of ${limit('PICKLE_INT_BYTES')} bytes (set KVLENS_LIMIT_PICKLE_INT_BYTES to raise it)`);
    return take(n);
  };
  const decimal = (s: string, op: string): bigint => {
    if (!/^[-+]?\d+$/.test(s)) fail(`${op} argument ${describeValue(s)} is not an integer`);
    if (s.length > limit('PICKLE_INT_DIGITS')) fail(`${op} argument has ${s.length} digits, over the limit of ${limit('PICKLE_INT_DIGITS')} (set KVLENS_LIMIT_PICKLE_INT_DIGITS to raise it)`);
    return BigInt(s);
  };
  const getMemo = (i: number): PickleValue => {
    if (!memo.has(i)) fail(`memo key ${i} was never stored`);
    return memo.get(i) as PickleValue;
  };

  for (;;) {
    opStart = pos;
    if (pos >= bytes.length) fail('truncated: reached end of file before STOP');
    const op = bytes[pos++];
    if (FORBIDDEN[op]) {
      fail(`opcode ${FORBIDDEN[op]} (0x${op.toString(16)}) is refused: it would import or call code; only plain lists/dicts/str/int are allowed`);
    }
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: take(8); break; // FRAME (protocol 4): payload follows inline
      case 0x2e: { // STOP
        const v = pop();
        return v;
      }
      case 0x28: stack.push(MARK); break; // MARK
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x7d: stack.push({}); break; // EMPTY_DICT
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x64: { // DICT
        const items = popMark();
        if (items.length % 2) fail('DICT with an odd number of items');
        const d: PickleDict = {};
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        stack.push(d);
        break;
      }
      case 0x85: { const a = pop(); stack.push([a]); break; } // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push([a, b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push([a, b, c]); break; } // TUPLE3
      case 0x61: { const v = pop(); asList(top(), 'APPEND').push(v); break; } // APPEND
      case 0x65: { // APPENDS (a loop: spreading 200,000 items as arguments overflows the stack)
        const items = popMark();
        const list = asList(top(), 'APPENDS');
        for (const item of items) list.push(item);
        break;
      }
      case 0x73: { const v = pop(); const k = pop(); setItem(asDict(top(), 'SETITEM'), k, v); break; } // SETITEM
      case 0x75: { // SETITEMS
        const items = popMark();
        if (items.length % 2) fail('SETITEMS with an odd number of items');
        const d = asDict(top(), 'SETITEMS');
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        break;
      }
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x49: { // INT (protocol 0; "00"/"01" are False/True)
        const s = line().trim();
        if (s === '00' || s === '01') { stack.push(s === '01'); break; }
        stack.push(narrowInt(decimal(s, 'INT')));
        break;
      }
      case 0x4c: { // LONG (protocol 0, "123L")
        const s = line().trim().replace(/L$/, '');
        stack.push(narrowInt(decimal(s, 'LONG')));
        break;
      }
      case 0x8a: stack.push(narrowInt(bytesToBigIntLE(intBytes(u8())))); break; // LONG1
      case 0x8b: { const n = i32(); if (n < 0) fail('LONG4 with a negative length'); stack.push(narrowInt(bytesToBigIntLE(intBytes(n)))); break; }
      case 0x47: { need(8); stack.push(dv.getFloat64(pos, false)); pos += 8; break; } // BINFLOAT (big-endian)
      case 0x46: { const s = line().trim(); const v = Number(s); if (Number.isNaN(v) && s.toLowerCase() !== 'nan') fail(`FLOAT argument ${describeValue(s)}`); stack.push(v); break; }
      case 0x58: stack.push(utf8Decode(take(u32()), fail)); break; // BINUNICODE
      case 0x8c: stack.push(utf8Decode(take(u8()), fail)); break; // SHORT_BINUNICODE
      case 0x8d: { need(8); const n = Number(dv.getBigUint64(pos, true)); pos += 8; stack.push(utf8Decode(take(n), fail)); break; } // BINUNICODE8
      case 0x56: stack.push(line().replace(/\\u([0-9a-fA-F]{4})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)))); break; // UNICODE
      case 0x55: stack.push(py2StrToString(take(u8()))); break; // SHORT_BINSTRING (py2 str)
      case 0x54: { const n = i32(); if (n < 0) fail('BINSTRING with a negative length'); stack.push(py2StrToString(take(n))); break; }
      case 0x53: stack.push(unquotePy2(line().trim(), fail)); break; // STRING
      case 0x43: stack.push(take(u8()).slice()); break; // SHORT_BINBYTES
      case 0x42: stack.push(take(u32()).slice()); break; // BINBYTES
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x70: { const s = line().trim(); if (!/^\d+$/.test(s)) fail(`PUT argument ${describeValue(s)}`); memo.set(Number(s), top()); break; }
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: stack.push(getMemo(u8())); break; // BINGET
      case 0x6a: stack.push(getMemo(u32())); break; // LONG_BINGET
      case 0x67: { const s = line().trim(); if (!/^\d+$/.test(s)) fail(`GET argument ${describeValue(s)}`); stack.push(getMemo(Number(s))); break; }
      case 0x30: pop(); break; // POP
      case 0x32: stack.push(top()); break; // DUP
      case 0x31: popMark(); break; // POP_MARK
      default: {
        const ch = op >= 0x20 && op < 0x7f ? ` '${String.fromCharCode(op)}'` : '';
        fail(`unknown or unsupported opcode 0x${op.toString(16)}${ch}`);
      }
    }
  }
}

function utf8Decode(b: Uint8Array, fail: (why: string) => never): string {
  try { return utf8Strict.decode(b); } catch { return fail('BINUNICODE payload is not valid UTF-8'); }
}
