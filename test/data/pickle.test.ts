import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unpickle } from '../../src/data/pickle.js';
import { picklePy2 } from '../../src/data/synthetic/pickle-writer.js';
import { KvlensInputError } from '../../src/util/errors.js';

const hex = (h: string) => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ''), 'hex'));

// pickle.dumps(refs, protocol=2) from CPython for:
// [{'ref_id': 7, 'ann_id': 123456789012, 'split': 'testA', 'sentences': [{'sent_id': 1, 'sent': 'left man',
//   'tokens': ['left','man']}], 'ratio': 0.5, 'flag': True, 'none': None, 'tup': (1, -2, 70000)}]
const PROTO2 = '80025d71007d71012858060000007265665f696471024b075806000000616e6e5f696471038a05141a99be1c580500000073706c69747104580500000074657374417105580900000073656e74656e63657371065d71077d710828580700000073656e745f696471094b01580400000073656e74710a58080000006c656674206d616e710b5806000000746f6b656e73710c5d710d2858040000006c656674710e58030000006d616e710f6575615805000000726174696f7110473fe00000000000005804000000666c616771118858040000006e6f6e6571124e580300000074757071134b014afeffffff4a7011010087711475612e';
// The same object with protocol=0 (text opcodes: MARK/LIST/DICT/V/I/L/F/PUT/SETITEM/APPEND/TUPLE).
const PROTO0 = '286c70300a286470310a567265665f69640a70320a49370a7356616e6e5f69640a70330a4c3132333435363738393031324c0a735673706c69740a70340a5674657374410a70350a735673656e74656e6365730a70360a286c70370a286470380a5673656e745f69640a70390a49310a735673656e740a7031300a566c656674206d616e0a7031310a7356746f6b656e730a7031320a286c7031330a566c6566740a7031340a61566d616e0a7031350a6173617356726174696f0a7031360a46302e350a7356666c61670a7031370a4930310a73566e6f6e650a7031380a4e73567475700a7031390a2849310a492d320a4937303030300a747032300a73612e';
const EXPECTED = [{
  ref_id: 7, ann_id: 123456789012, split: 'testA', sentences: [{ sent_id: 1, sent: 'left man', tokens: ['left', 'man'] }],
  ratio: 0.5, flag: true, none: null, tup: [1, -2, 70000],
}];

test('unpickle reads CPython protocol-2 and protocol-0 pickles of plain data', () => {
  assert.deepEqual(unpickle(hex(PROTO2), 'p2.p'), EXPECTED);
  assert.deepEqual(unpickle(hex(PROTO0), 'p0.p'), EXPECTED);
});

test('py2 str (SHORT_BINSTRING) decodes as UTF-8, falling back to latin-1; BINGET shares the memoised object', () => {
  // [ 'abc', '\xe9' ] as py2 str: EMPTY_LIST BINPUT0 MARK U3abc BINPUT1 U1\xe9 BINPUT2 APPENDS STOP
  const v = unpickle(hex('80025d71002855036162637101550 1e97102652e'), 's.p');
  assert.deepEqual(v, ['abc', 'é']);
  const shared = unpickle(hex('80025d7100285d71016801652e'), 'g.p') as unknown[][];
  assert.equal(shared.length, 2);
  assert.equal(shared[0], shared[1]); // same list object, as Python would give
});

test('the py2 pickle writer round-trips through the reader (keys as py2 str, non-ASCII as unicode)', () => {
  const value = [{ ref_id: 3, sentences: [{ sent: 'café left', tokens: ['café'] }], big: 2 ** 40, neg: -5, f: 1.25, u: { unicode: 'x' } }];
  const bytes = picklePy2(value);
  assert.equal(bytes[2], 0x5d); // EMPTY_LIST right after PROTO 2
  assert.ok(bytes.includes(0x55)); // SHORT_BINSTRING keys
  assert.deepEqual(unpickle(bytes, 'w.p'), [{ ref_id: 3, sentences: [{ sent: 'café left', tokens: ['café'] }], big: 2 ** 40, neg: -5, f: 1.25, u: 'x' }]);
});

test('opcodes that import or call code are refused with file, offset and opcode name', () => {
  // pickle.dumps(collections.OrderedDict(a=1), protocol=2): PROTO, GLOBAL 'collections OrderedDict', ...
  const bytes = hex('800263636f6c6c656374696f6e730a4f726465726564446963740a71002952710158010000006171024b01732e');
  assert.throws(() => unpickle(bytes, '/data/refs(unc).p'), (e: unknown) => {
    assert.ok(e instanceof KvlensInputError);
    assert.match(e.message, /refs\(unc\)\.p/);
    assert.match(e.message, /GLOBAL \(0x63\)/);
    assert.match(e.message, /byte offset 2\b/);
    return true;
  });
  for (const [op, name] of [[0x52, 'REDUCE'], [0x62, 'BUILD'], [0x93, 'STACK_GLOBAL'], [0x69, 'INST'], [0x81, 'NEWOBJ'], [0x6f, 'OBJ']] as const) {
    assert.throws(() => unpickle(Uint8Array.from([0x80, 2, 0x4e, op, 0x2e]), 'x.p'), new RegExp(`${name} .*byte offset 3`));
  }
});

test('truncated or unknown input fails with a clear message, never silently', () => {
  const full = hex(PROTO2);
  assert.throws(() => unpickle(full.subarray(0, 40), 't.p'), /t\.p: pickle: truncated/);
  assert.throws(() => unpickle(Uint8Array.from([0x80, 2, 0xff]), 'u.p'), /unknown or unsupported opcode 0xff \(byte offset 2\)/);
  assert.throws(() => unpickle(Uint8Array.from([0x80, 2, 0x65, 0x2e]), 'm.p'), /no MARK/);
});
