// A minimal protobuf writer for the subset of onnx.proto that kvlens emits (ModelProto, GraphProto, NodeProto,
// AttributeProto, TensorProto with external data, ValueInfoProto). Hand-written so the engine has no protobufjs
// dependency; field numbers are those of onnx/onnx.proto (stable since IR v3).
//
// Only what a writer needs: varints, length-delimited submessages, fixed32 floats. Repeated scalars are written
// unpacked (proto2 style), which every ONNX reader accepts.

/** ONNX TensorProto.DataType values. */
export const OnnxDataType = {
  FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10, DOUBLE: 11, BFLOAT16: 16,
} as const;
export type OnnxDataTypeCode = (typeof OnnxDataType)[keyof typeof OnnxDataType];

/** Grows a byte buffer while encoding. */
class Writer {
  private buf = new Uint8Array(256);
  private len = 0;

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  varint(v: number | bigint): void {
    // Negative int64 values are encoded as 10-byte two's complement, as protobuf specifies.
    let x = BigInt.asUintN(64, BigInt(v));
    this.ensure(10);
    while (x >= 0x80n) {
      this.buf[this.len++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.buf[this.len++] = Number(x);
  }

  tag(field: number, wireType: 0 | 1 | 2 | 5): void {
    this.varint((field << 3) | wireType);
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  fixed32Float(f: number): void {
    this.ensure(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, f, true);
    this.len += 4;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

const utf8 = new TextEncoder();

/** A message under construction: typed field setters, each appending one encoded field. */
export class Message {
  private readonly w = new Writer();

  int(field: number, v: number | bigint): this {
    this.w.tag(field, 0);
    this.w.varint(v);
    return this;
  }

  ints(field: number, vs: ReadonlyArray<number | bigint>): this {
    for (const v of vs) this.int(field, v);
    return this;
  }

  float(field: number, f: number): this {
    this.w.tag(field, 5);
    this.w.fixed32Float(f);
    return this;
  }

  floats(field: number, fs: readonly number[]): this {
    for (const f of fs) this.float(field, f);
    return this;
  }

  string(field: number, s: string): this {
    return this.raw(field, utf8.encode(s));
  }

  strings(field: number, ss: readonly string[]): this {
    for (const s of ss) this.string(field, s);
    return this;
  }

  raw(field: number, b: Uint8Array): this {
    this.w.tag(field, 2);
    this.w.bytes(b);
    return this;
  }

  message(field: number, m: Message): this {
    return this.raw(field, m.encode());
  }

  messages(field: number, ms: readonly Message[]): this {
    for (const m of ms) this.message(field, m);
    return this;
  }

  encode(): Uint8Array {
    return this.w.finish();
  }
}

// ---- onnx.proto field numbers ------------------------------------------------------------------------------

export const F = {
  model: { irVersion: 1, producerName: 2, producerVersion: 3, graph: 7, opsetImport: 8 },
  opset: { domain: 1, version: 2 },
  graph: { node: 1, name: 2, initializer: 5, input: 11, output: 12, valueInfo: 13 },
  node: { input: 1, output: 2, name: 3, opType: 4, attribute: 5, domain: 7 },
  attr: { name: 1, f: 2, i: 3, s: 4, t: 5, floats: 7, ints: 8, type: 20 },
  tensor: { dims: 1, dataType: 2, name: 8, rawData: 9, externalData: 13, dataLocation: 14 },
  stringEntry: { key: 1, value: 2 },
  valueInfo: { name: 1, type: 2 },
  typeProto: { tensorType: 1 },
  tensorType: { elemType: 1, shape: 2 },
  shape: { dim: 1 },
  dim: { value: 1, param: 2 },
} as const;

/** AttributeProto.AttributeType values. */
export const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;
/** TensorProto.DataLocation.EXTERNAL */
export const DATA_LOCATION_EXTERNAL = 1;
