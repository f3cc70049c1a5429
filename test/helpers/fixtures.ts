// Paths to the reference fixtures copied into the repository (test/fixtures), so tests never reach outside the checkout.
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
// Compiled tests run from dist/test/helpers; sources from test/helpers. Both resolve to <repo>/test/fixtures.
export const REPO_ROOT = resolve(here, here.includes(`${join('dist', 'test')}`) ? '../../..' : '../..');
export const FIXTURES = join(REPO_ROOT, 'test', 'fixtures');
export const HF_REF = join(FIXTURES, 'hf-reference');
export const HF_REF_MORE = join(FIXTURES, 'hf-reference-more');
