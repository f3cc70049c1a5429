// Parsers on hand cases and metrics of fixed answer lists against hand-computed values (unparseable answers and
// lmms-eval's recall-denominator quirk included).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  blinkTruth, mmeTruth, parseBlinkLetter, parseMmeAnswer, parsePopeLlavaFirstSentence, parsePopeLmmsExact, pyStrip,
} from '../../src/eval/parsers.js';
import { BenchmarkScorer, toEvalItems, type EvalItem } from '../../src/eval/tasks.js';
import { BlinkAccumulator, MmeAccumulator, PopeAccumulator } from '../../src/eval/metrics.js';

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

test('POPE parsers: lmms exact match vs LLaVA first sentence', () => {
  const cases: [string, string | null, string][] = [
    ['yes', 'yes', 'yes'], [' Yes\n', 'yes', 'yes'], ['Yes.', null, 'yes'], ['Yes, there is', null, 'yes'], ['NO', 'no', 'yes'],
    ['No, there is not.', null, 'no'], ['There is no dog.', null, 'no'], ['It is not. No.', null, 'no'], ['Not sure', null, 'yes'], ['', null, 'yes'],
  ];
  for (const [out, lmms, llava] of cases) {
    assert.equal(parsePopeLmmsExact(out), lmms, `lmms-exact ${JSON.stringify(out)}`);
    assert.equal(parsePopeLlavaFirstSentence(out), llava, `llava ${JSON.stringify(out)}`);
  }
});

test('MME parse_pred_ans', () => {
  const cases: [string, string | null][] = [
    ['Yes', 'yes'], ['no.', 'no'], ['Y', 'yes'], ['n.', 'no'], ['x', null], ['yes, it is', 'yes'], ['none', 'no'], ['Not at all', 'no'],
    ['There is no', null], ['a yes', null], ['noyes', 'no'], ['nayes', null], ['y.e.s', 'yes'], ['', null],
  ];
  for (const [out, want] of cases) assert.equal(parseMmeAnswer(out), want, JSON.stringify(out));
  assert.equal(mmeTruth('Yes'), 'yes');
  assert.throws(() => mmeTruth('Maybe'), /Yes or No/);
});

test('BLINK leading-letter regex', () => {
  const cases: [string, string | null][] = [
    ['A', 'A'], ['(b)', 'B'], [' (C) the third', 'C'], ['D.', 'D'], ['The answer is B', 'T'], ['42', null], ['', null], ['(', null],
  ];
  for (const [out, want] of cases) assert.equal(parseBlinkLetter(out), want, JSON.stringify(out));
  assert.equal(blinkTruth('(A)'), 'A');
});

// Truth y y y y y n n n n n and these outputs:
const POPE_TRUTH = ['yes', 'yes', 'yes', 'yes', 'yes', 'no', 'no', 'no', 'no', 'no'] as const;
const POPE_OUT = ['yes', 'Yes', 'Yes.', 'no', 'There is a dog.', 'no', 'NO ', 'yes', 'Not sure', 'No, there is not.'];

test('POPE metrics (lmms-exact): unparseable answers are wrong and leave the recall denominator', () => {
  const acc = new PopeAccumulator();
  POPE_TRUTH.forEach((t, i) => acc.add('random', t, parsePopeLmmsExact(POPE_OUT[i])));
  // parses: yes yes - no - | no no yes - -   -> TP 2, FN 1 (two unparsed yes-questions), FP 1, TN 2, unparsed 4
  const [m] = acc.result();
  assert.equal(m.split, 'random');
  assert.equal(m.n, 10);
  close(m.accuracy, 0.4, 'accuracy');
  close(m.precision, 2 / 3, 'precision');
  close(m.recall, 2 / 3, 'recall = TP/(TP+FN), not TP/#yes = 2/5');
  close(m.f1, 2 / 3, 'f1');
  close(m.yesRatio, 0.3, 'prediction yes ratio');
  close(m.unparsedRate, 0.4, 'unparsed');
  close(m.gtYesRatio, 0.5, 'lmms yes_ratio = ground truth');
});

test('POPE metrics (llava-first-sentence) and splits kept apart', () => {
  const acc = new PopeAccumulator();
  POPE_TRUTH.forEach((t, i) => acc.add('adversarial', t, parsePopeLlavaFirstSentence(POPE_OUT[i])));
  acc.add('popular', 'no', 'no');
  // parses: y y y n y | n y y y n  -> TP 4, FN 1, FP 3, TN 2
  const [m, pop] = acc.result();
  close(m.accuracy, 0.6, 'accuracy');
  close(m.precision, 4 / 7, 'precision');
  close(m.recall, 4 / 5, 'recall');
  close(m.f1, 2 / 3, 'f1 = 2*(4/7)*(4/5)/(4/7+4/5)');
  close(m.yesRatio, 0.7, 'yes ratio');
  assert.equal(m.unparsedRate, 0);
  assert.deepEqual(pop, { split: 'popular', n: 1, accuracy: 1, precision: 0, recall: 0, f1: 0, yesRatio: 0, unparsedRate: 0, gtYesRatio: 0 });
});

test('MME: acc, acc+ and score per subtask, perception and cognition sums, exactly two answers per image', () => {
  const acc = new MmeAccumulator();
  const answers: [string, string, 'Yes' | 'No', string][] = [
    ['existence', 'existence/1.jpg', 'Yes', 'Yes'], ['existence', 'existence/1.jpg', 'No', 'No'],
    ['existence', 'existence/2.jpg', 'Yes', 'yes, there is'], ['existence', 'existence/2.jpg', 'No', 'none'],
    ['existence', 'existence/3.png', 'Yes', 'n'], ['existence', 'existence/3.png', 'No', 'There is no'],
    ['count', 'count/1.jpg', 'Yes', 'Y.'], ['count', 'count/1.jpg', 'No', 'Yes'],
    ['commonsense_reasoning', 'cr/1.png', 'Yes', 'yes'], ['commonsense_reasoning', 'cr/1.png', 'No', 'no'],
  ];
  for (const [task, img, truth, out] of answers) acc.add(task, img, parseMmeAnswer(out) === mmeTruth(truth));
  const r = acc.result();
  const by = Object.fromEntries(r.subtasks.map((s) => [s.name, s]));
  close(by.existence.acc, 2 / 3, 'existence acc');
  close(by.existence.accPlus, 2 / 3, 'existence acc+');
  close(by.existence.score, 400 / 3, 'existence score');
  assert.equal(by.existence.images, 3);
  close(by.count.acc, 0.5, 'count acc');
  assert.equal(by.count.accPlus, 0);
  close(by.count.score, 50, 'count score');
  assert.equal(by.commonsense_reasoning.score, 200);
  assert.equal(by.commonsense_reasoning.category, 'cognition');
  close(r.perception, 400 / 3 + 50, 'perception');
  assert.equal(r.cognition, 200);

  const odd = new MmeAccumulator();
  odd.add('scene', 'scene/1.jpg', true);
  assert.throws(() => odd.result(), /scene\/1\.jpg of scene has 1 answer\(s\), expected exactly 2/);
  assert.throws(() => odd.add('colour', 'x', true), /unknown MME subtask "colour"/);
});

test('BLINK: per subtask accuracy, macro (lmms) and micro means, unparseable rate', () => {
  const acc = new BlinkAccumulator();
  const rows: [string, string, string][] = [
    ['Art_Style', '(A)', 'A'], ['Art_Style', '(B)', '(b)'], ['Art_Style', '(A)', 'The answer is A'],
    ['Counting', '(C)', 'C.'], ['Counting', '(D)', '42'],
  ];
  for (const [task, truth, out] of rows) acc.add(task, blinkTruth(truth), parseBlinkLetter(out));
  const r = acc.result();
  assert.deepEqual(r.subtasks.map((s) => [s.name, s.n]), [['Art_Style', 3], ['Counting', 2]]);
  close(r.subtasks[0].accuracy, 2 / 3, 'Art_Style');
  close(r.subtasks[1].accuracy, 0.5, 'Counting');
  close(r.subtasks[1].unparsedRate, 0.5, 'Counting unparsed');
  close(r.macro, 7 / 12, 'macro');
  close(r.micro, 3 / 5, 'micro');
  close(r.unparsedRate, 1 / 5, 'unparsed');
});

test('BenchmarkScorer routes items to their benchmark and records every parser', () => {
  const s = new BenchmarkScorer();
  const item = (benchmark: EvalItem['benchmark'], truth: string, extra: Partial<EvalItem> = {}): EvalItem =>
    ({ benchmark, id: 'x', group: benchmark === 'mme' ? 'existence' : 'g', imageKey: 'k', images: ['a.png'], context: 'c', truth, ...extra });
  assert.deepEqual(s.add(item('pope', 'yes'), 'Yes.'), { parsed: { 'lmms-exact': null, 'llava-first-sentence': 'yes' }, correct: { 'lmms-exact': false, 'llava-first-sentence': true } });
  assert.deepEqual(s.add(item('mme', 'no', { pairId: 'p' }), 'No'), { parsed: { 'lmms-parse_pred_ans': 'no' }, correct: { 'lmms-parse_pred_ans': true } });
  assert.deepEqual(s.add(item('blink', 'B'), '(B)'), { parsed: { 'lmms-leading-letter': 'B' }, correct: { 'lmms-leading-letter': true } });
  assert.deepEqual([...s.seen].sort(), ['blink', 'mme', 'pope']);
});

test('toEvalItems refuses datasets that are not benchmarks', async () => {
  await assert.rejects(async () => {
    for await (const item of toEvalItems([{ dataset: 'msrc' } as never])) void item;
  }, /dataset "msrc" is not a benchmark/);
});

test('whitespace is stripped exactly as Python 3 str.strip(): U+001C-U+001F and U+0085 yes, U+FEFF no (CPython 3.11)', () => {
  // Every code point str.isspace() accepts, listed by CPython over the whole range.
  const py = [0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, ...Array.from({ length: 11 }, (_, i) => 0x2000 + i), 0x2028, 0x2029, 0x202f, 0x205f, 0x3000];
  const all = String.fromCodePoint(...py);
  assert.equal(pyStrip(`${all}yes${all}`), 'yes');
  for (let c = 0; c < 0x3001; c++) { // nothing else is stripped (JS trim also removes U+FEFF)
    if (!py.includes(c)) assert.equal(pyStrip(`${String.fromCodePoint(c)}x`).length, 2, `U+${c.toString(16)}`);
  }
  assert.equal(pyStrip('\ufeffyes'), '\ufeffyes');
  // so the POPE / MME parsers read an answer wrapped in U+001E / U+0085 and refuse one after a BOM
  assert.equal(parsePopeLmmsExact('\u001eYes\u0085'), 'yes');
  assert.equal(parsePopeLmmsExact('\ufeffYes'), null);
  assert.equal(parseMmeAnswer('\u001cno.\u001f'), 'no');
  // BLINK: Python's \s and IGNORECASE [A-Z] (dotless i, long s, Kelvin sign fold onto letters; a BOM is not space)
  assert.equal(parseBlinkLetter('\u001c(b)'), 'B');
  assert.equal(parseBlinkLetter('\u0085 (c)'), 'C');
  assert.equal(parseBlinkLetter('\u0131'), 'I');
  assert.equal(parseBlinkLetter('\u017f'), 'S');
  assert.equal(parseBlinkLetter('\u212a.'), '\u212a');
  assert.equal(parseBlinkLetter('\ufeffB'), null);
});
