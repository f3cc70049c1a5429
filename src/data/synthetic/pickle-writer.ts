// Writes Python-2 cPickle (protocol 2) bytes for plain data, the way refer's refs(*).p files are encoded: dict keys
// and ASCII strings as py2 `str` (SHORT_BINSTRING/BINSTRING), other text as BINUNICODE, containers memoised with BINPUT
// and filled with MARK ... APPENDS / SETITEMS.
export type PyValue = null | boolean | number | string | { unicode: string } | PyValue[] | { [k: string]: PyValue };

export function picklePy2(value: PyValue): Uint8Array {
  const out: number[] = [0x80, 2];
  let memo = 0;
  const u32 = (n: number) => out.push(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
  const put = () => { if (memo < 256) out.push(0x71, memo++); else { out.push(0x72); u32(memo++); } };
  const bytes = (b: Uint8Array) => { for (const x of b) out.push(x); };
  const str = (s: string) => {
    const b = new TextEncoder().encode(s);
    const ascii = b.every((c) => c < 0x80);
    if (!ascii) { out.push(0x58); u32(b.length); bytes(b); put(); return; }
    if (b.length < 256) out.push(0x55, b.length); else { out.push(0x54); u32(b.length); }
    bytes(b); put();
  };
  const write = (v: PyValue): void => {
    if (v === null) out.push(0x4e);
    else if (v === true) out.push(0x88);
    else if (v === false) out.push(0x89);
    else if (typeof v === 'number') {
      if (!Number.isInteger(v)) { out.push(0x47); const dv = new DataView(new ArrayBuffer(8)); dv.setFloat64(0, v, false); bytes(new Uint8Array(dv.buffer)); }
      else if (v >= 0 && v < 256) out.push(0x4b, v);
      else if (v >= 0 && v < 65536) out.push(0x4d, v & 0xff, v >> 8);
      else if (v >= -(2 ** 31) && v < 2 ** 31) { out.push(0x4a); u32(v >>> 0); }
      else { // LONG1, little-endian two's complement
        let b = BigInt(v); const le: number[] = [];
        do { le.push(Number(b & 0xffn)); b >>= 8n; } while (!(b === 0n && !(le[le.length - 1] & 0x80)) && !(b === -1n && le[le.length - 1] & 0x80));
        out.push(0x8a, le.length, ...le);
      }
    } else if (typeof v === 'string') str(v);
    else if (Array.isArray(v)) {
      out.push(0x5d); put();
      if (v.length) { out.push(0x28); v.forEach(write); out.push(0x65); }
    } else if ('unicode' in v && typeof v.unicode === 'string' && Object.keys(v).length === 1) {
      const b = new TextEncoder().encode(v.unicode);
      out.push(0x58); u32(b.length); bytes(b); put();
    } else {
      out.push(0x7d); put();
      const entries = Object.entries(v as { [k: string]: PyValue });
      if (entries.length) { out.push(0x28); for (const [k, x] of entries) { str(k); write(x); } out.push(0x75); }
    }
  };
  write(value);
  out.push(0x2e);
  return Uint8Array.from(out);
}
