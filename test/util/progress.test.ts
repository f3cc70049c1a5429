// Progress lines: counts, rate, ETA and skipped counts from a fake clock; plain mode throttles to the interval.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { Progress, formatDuration } from '../../src/util/progress.js';

function sink(): { stream: Writable; text: () => string } {
  let out = '';
  const stream = new Writable({ write(chunk, _enc, cb) { out += chunk.toString(); cb(); } });
  return { stream, text: () => out };
}

test('plain mode: a line per interval and a final line; rate and ETA from elapsed time', () => {
  let now = 0;
  const s = sink();
  const p = new Progress({ total: 10, label: 'extract', stream: s.stream, tty: false, intervalMs: 5000, now: () => now });
  for (let i = 0; i < 4; i++) { now += 1000; p.tick(); } // 4 items in 4 s: the first line at t=1s, the next not before t=6s
  now += 1000; p.tick(1, { skipped: true }); // t=5s
  now += 1000; p.tick(); // t=6s -> a line: 6 done, 1/s, ETA 4s
  p.done();
  const lines = s.text().trim().split('\n');
  assert.deepEqual(lines, [
    'extract 1/10 (10.0%) 1.00/s ETA 9s',
    'extract 6/10 (60.0%) 1.00/s ETA 4s, 1 skipped',
  ]);
  for (let i = 0; i < 4; i++) { now += 500; p.tick(); }
  assert.match(s.text().trim().split('\n').pop()!, /^extract 10\/10 \(100\.0%\) .* done in 8s, 1 skipped$/);
});

test('tty mode redraws one line with a bar; durations format as s, m, h', () => {
  let now = 0;
  const s = sink();
  const p = new Progress({ total: 4, stream: s.stream, tty: true, now: () => now });
  now = 2000; p.tick(2);
  assert.match(s.text(), /^\r\x1b\[K\[#+\.+\] 2\/4 \(50\.0%\) 1\.00\/s ETA 2s$/);
  p.log('a message');
  assert.match(s.text(), /\r\x1b\[Ka message\n/);
  assert.equal(formatDuration(59.4), '59s');
  assert.equal(formatDuration(61), '1m01s');
  assert.equal(formatDuration(3 * 3600 + 120), '3h02m');
  assert.equal(formatDuration(Infinity), '?');
});
