import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cosineMatch, LruCache, pcaRgb, principalComponents } from '../../src/viewer/features.js';
import { checkRelativePath } from '../../src/viewer/paths.js';

test('principal components of a known anisotropic cloud', () => {
  // Points along (3, 4)/5 with spread 10 plus a small orthogonal spread 1 in 2-D: PC1 = (0.6, 0.8), PC2 = (-0.8, 0.6) up to sign.
  const pts: number[] = [];
  for (let i = -5; i <= 5; i++) for (const s of [-1, 1]) pts.push(0.6 * 2 * i - 0.8 * s + 7, 0.8 * 2 * i + 0.6 * s - 3);
  const x = Float32Array.from(pts);
  const [p1, p2] = principalComponents(x, x.length / 2, 2, 2);
  assert.ok(Math.abs(Math.abs(p1[0]) - 0.6) < 1e-6 && Math.abs(Math.abs(p1[1]) - 0.8) < 1e-6, `${p1}`);
  assert.ok(Math.abs(p1[0] * p2[0] + p1[1] * p2[1]) < 1e-9, 'orthogonal');
  // Colours: the first channel orders points along PC1 (min -> 0, max -> 255).
  const rgb = pcaRgb(x, x.length / 2, 2);
  const r = Array.from({ length: x.length / 2 }, (_, i) => rgb[3 * i]);
  assert.equal(Math.min(...r), 0);
  assert.equal(Math.max(...r), 255);
  assert.equal(rgb[2], 128, 'a missing third component is mid-grey');
});

test('cosine match picks the most similar token', () => {
  const a = Float32Array.from([1, 0, 0, 1]); // 2 tokens, d = 2
  const b = Float32Array.from([1, 1, 0, 2, 5, 0.1]); // 3 tokens
  const m = cosineMatch(a, 1, b, 2);
  assert.equal(m.best, 1);
  assert.ok(Math.abs(m.sims[0] - Math.SQRT1_2) < 1e-6);
  assert.equal(cosineMatch(a, 0, b, 2).best, 2);
});

test('LRU cache evicts the least recently used entry', () => {
  const c = new LruCache<number>(2);
  c.set('a', 1);
  c.set('b', 2);
  c.get('a');
  c.set('c', 3);
  assert.equal(c.get('b'), undefined);
  assert.equal(c.get('a'), 1);
  assert.equal(c.size, 2);
});

test('relative path shapes that are refused', () => {
  for (const bad of ['../x', 'a/../../x', '/etc/passwd', 'a\\..\\b', 'C:/x', 'a/%2e%2e/b', 'x\0y', './a']) assert.ok(checkRelativePath(bad), bad);
  assert.equal(checkRelativePath('samples/a b.png'), null);
});
