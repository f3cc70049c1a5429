// The bench's per-part breakdown: session spans grouped into vision tower, LM layers, head; what no part covers is
// 'other'; and rows print wall, share, system time and faults.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { breakdownRows, groupSpans } from '../../bench/breakdown.js';
import type { Span } from '../../src/runtime/stats.js';

const span = (label: string, wallS: number, minorFaults = 0, sysS = 0): Span => ({ label, wallS, userS: wallS, sysS, minorFaults, majorFaults: 0 });

test('groupSpans: parts by session name, summed over chunks, remainder as other', () => {
  const spans = [
    span('session:llava_onevision_vision', 8, 100, 0.5),
    span('session:qwen2.layer0', 1, 10), span('session:qwen2.layer1', 1, 10),
    span('session:qwen2.layer0', 0.5, 5), // second chunk
    span('session:qwen2.head', 0.2, 1),
    span('lm.tap-copies', 0.1),
  ];
  const rows = groupSpans(spans, span('prefill', 12, 200, 1));
  const by = new Map(rows.map((r) => [r.part, r]));
  assert.equal(by.get('vision tower + projector')!.wallS, 8);
  assert.equal(by.get('LM layer 0')!.wallS, 1.5);
  assert.equal(by.get('LM layer 0')!.minorFaults, 15);
  assert.equal(by.get('LM head (final norm + logits)')!.wallS, 0.2);
  assert.equal(by.get('LM tap copies (K/V past the cache, chunk merge)')!.wallS, 0.1);
  const other = rows[rows.length - 1];
  assert.match(other.part, /^other/);
  assert.ok(Math.abs(other.wallS - (12 - 8 - 2.5 - 0.2 - 0.1)) < 1e-9);
  assert.equal(other.minorFaults, 200 - 126);
  const printed = breakdownRows(rows, span('prefill', 12, 200, 1));
  assert.match(printed[0].value, /8\.000 s \(66\.7%\)  sys 0\.500 s  faults\s+100/);
  assert.match(printed[printed.length - 1].metric, /whole forward/);
});
