// Answer parsers. Each replicates one published harness on purpose, quirks included, and has a name that is stored
// next to every number it produced (anchors-and-style.md §4.2-4.4).

import { KvlensInputError } from '../util/errors.js';

/** A yes/no parse; null = the output could not be read as either. */
export type YesNo = 'yes' | 'no' | null;

export type PopeParserName = 'lmms-exact' | 'llava-first-sentence';

/**
 * Python 3's whitespace (str.isspace: what str.strip() removes and what `\s` matches in a str pattern), checked
 * against CPython 3.11 over every code point. JS trim() differs: it also strips U+FEFF and keeps U+001C-U+001F, U+0085.
 */
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');
/** Python's str.strip() with no argument. */
export const pyStrip = (s: string) => s.replace(PY_STRIP, '');
/** Python indexes code points; JS strings index UTF-16 units. */
const codePoints = (s: string) => Array.from(s);

/** lmms-eval `pope`: `output.lower().strip()` must equal "yes" or "no" exactly ("Yes." and "Yes, there is" are not). */
export function parsePopeLmmsExact(output: string): YesNo {
  const p = pyStrip(output.toLowerCase());
  return p === 'yes' || p === 'no' ? p : null;
}

/**
 * LLaVA's eval_pope.py (and POPE's evaluate.py): keep the text before the first ".", drop commas, split on single
 * spaces; "No", "not" or "no" among the words -> no, anything else -> yes. Never unparseable.
 */
export function parsePopeLlavaFirstSentence(output: string): YesNo {
  let text = output;
  const dot = text.indexOf('.');
  if (dot !== -1) text = text.slice(0, dot);
  const words = text.split(',').join('').split(' ');
  return words.includes('No') || words.includes('not') || words.includes('no') ? 'no' : 'yes';
}

export const POPE_PARSERS: Record<PopeParserName, (output: string) => YesNo> = {
  'lmms-exact': parsePopeLmmsExact,
  'llava-first-sentence': parsePopeLlavaFirstSentence,
};

export const MME_PARSER_NAME = 'lmms-parse_pred_ans';

/**
 * lmms-eval MME `parse_pred_ans` ("brought from Otter"): lower, strip, remove every "."; exact yes/no; a single
 * character y/n; else "yes" within the first 4 characters -> yes, else "no" there -> no ("none", "not" count);
 * otherwise other (null here; scored wrong).
 */
export function parseMmeAnswer(output: string): YesNo {
  const p = pyStrip(output.toLowerCase()).split('.').join('');
  if (p === 'yes' || p === 'no') return p;
  const chars = codePoints(p);
  if (chars.length === 1) return p === 'y' ? 'yes' : p === 'n' ? 'no' : null;
  const head = chars.slice(0, 4).join('');
  if (head.includes('yes')) return 'yes';
  if (head.includes('no')) return 'no';
  return null;
}

/** MME ground truth ("Yes"/"No", possibly with a period) normalised the way lmms-eval does. */
export function mmeTruth(answer: string): 'yes' | 'no' {
  const t = pyStrip(answer.toLowerCase()).split('.').join('');
  if (t !== 'yes' && t !== 'no') throw new KvlensInputError(`MME answer must be Yes or No, got ${JSON.stringify(answer)}`);
  return t;
}

export const BLINK_PARSER_NAME = 'lmms-leading-letter';

/**
 * lmms-eval BLINK: strip, then re.match (anchored at the start) of `[\(\s]*([A-Z])[\)\.\s]*` ignoring case, upper-cased.
 * Only a LEADING letter counts: "The answer is B" parses as "T". Null when the output starts with anything else.
 */
export function parseBlinkLetter(output: string): string | null {
  const m = BLINK_LEADING_LETTER.exec(pyStrip(output));
  return m ? m[1].toUpperCase() : null;
}
/**
 * `[\(\s]*([A-Z])` under re.IGNORECASE, as CPython 3.11 matches it: Python's `\s` (PY_SPACE), and besides A-Z / a-z
 * the letters that fold onto them: U+0130 and U+0131 (dotted / dotless i), U+017F (long s), U+212A (Kelvin sign).
 */
const BLINK_LEADING_LETTER = new RegExp(`^[(${PY_SPACE}]*([A-Za-z\\u0130\\u0131\\u017f\\u212a])`);

/** BLINK ground truth: `answer.strip("()")`. */
export function blinkTruth(answer: string): string {
  return answer.replace(/^[()]+|[()]+$/g, '');
}
