// Error messages are built safely from any value a hostile file can produce.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeValue, inputErrorFromErrno, ownValue } from '../../src/util/errors.js';

test('describeValue never throws: cycles, 100,000-deep nesting, huge BigInt, long strings, typed arrays', () => {
  const self: unknown[] = [];
  self.push(self, 1);
  assert.equal(describeValue(self), '[[circular], 1]');
  let deep: unknown = 0;
  for (let i = 0; i < 100_000; i++) deep = [deep];
  assert.match(describeValue(deep), /^\[\[\[\[1 item\(s\)\]\]\]\]$/);
  assert.equal(describeValue(12n), '12n');
  assert.equal(describeValue(1n << 200_000n), '<200004-bit integer>');
  assert.equal(describeValue('x'.repeat(10_000)).length, 120);
  assert.equal(describeValue(new Uint8Array(7)), 'Uint8Array(7)');
  assert.equal(describeValue({ a: null, b: undefined, c: Symbol('s') }), '{"a": null, "b": undefined, "c": symbol}');
  const hostile = { toString() { throw new Error('no'); }, get x() { throw new Error('getter'); } };
  assert.equal(typeof describeValue(hostile), 'string');
});

test('ownValue ignores Object.prototype names', () => {
  const table: Record<string, number> = { a: 1 };
  for (const k of ['constructor', '__proto__', 'hasOwnProperty', 'toString']) assert.equal(ownValue(table, k), undefined);
  assert.equal(ownValue(table, 'a'), 1);
});

test('errno errors on a user path become input errors naming the path', () => {
  const e = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES', path: '/x/out', syscall: 'open' });
  assert.equal(inputErrorFromErrno(e)?.message, '/x/out: permission denied (open)');
  assert.equal(inputErrorFromErrno(new TypeError('x')), null);
});
