// kvlens viewer page: plain JS, no framework, no network beyond this server. The server computes everything
// (PCA colours, cosine matches); this file only fetches JSON and paints token grids on canvases.
'use strict';

const PAGE = 50;
const state = { info: null, offset: 0, total: 0, a: null, b: null, tap: null, layer: 0, token: null, seq: 0 };
const $ = (id) => document.getElementById(id);

async function api(path, params) {
  const url = `/api/${path}?${new URLSearchParams(params)}`;
  const r = await fetch(url);
  const body = await r.json();
  if (!r.ok) throw Object.assign(new Error(body.error || r.statusText), { status: r.status });
  return body;
}

function status(msg) {
  $('status').textContent = msg;
}

// ---- painting ----

function cellSize(canvas, rows, cols) {
  return Math.max(1, Math.floor(Math.min(canvas.width / cols, canvas.height / rows)));
}

function paintCells(canvas, rows, cols, colorOf) {
  const ctx = canvas.getContext('2d');
  const s = cellSize(canvas, rows, cols);
  ctx.fillStyle = '#eeeeee';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const [R, G, B] = colorOf(r * cols + c);
      ctx.fillStyle = `rgb(${R},${G},${B})`;
      ctx.fillRect(c * s, r * s, s, s);
    }
  }
  return s;
}

function ring(canvas, rows, cols, p, color) {
  const ctx = canvas.getContext('2d');
  const s = cellSize(canvas, rows, cols);
  ctx.strokeStyle = color;
  ctx.lineWidth = 3;
  ctx.strokeRect((p % cols) * s + 1.5, Math.floor(p / cols) * s + 1.5, s - 3, s - 3);
}

// A perceptual-ish ramp (dark blue -> teal -> yellow), values in [0, 1].
const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function ramp(t) {
  const x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  return RAMP[i].map((v, k) => Math.round(v + (RAMP[i + 1][k] - v) * f));
}

function paintScalar(canvas, rows, cols, values, lo, hi) {
  const span = hi - lo || 1;
  paintCells(canvas, rows, cols, (p) => ramp((values[p] - lo) / span));
}

// ---- data ----

async function loadInfo() {
  state.info = await api('info', {});
  $('title').textContent = `kvlens viewer — ${state.info.title}`;
  const tapSel = $('tap');
  tapSel.innerHTML = '';
  for (const t of state.info.taps) tapSel.add(new Option(`lm.{L}.${t.name}`, t.name));
  const v = state.info.taps.find((t) => t.name === 'attn.v');
  state.tap = v ? 'attn.v' : state.info.taps[0]?.name ?? null;
  if (state.tap) tapSel.value = state.tap;
  setLayerRange();
  if (!state.info.hasStore) status('This run has no feature store (<run>/store): only the key-variance map is available.');
}

function layersOfTap() {
  const t = state.info.taps.find((x) => x.name === state.tap);
  if (t) return t.layers;
  return state.info.keyVariance ? state.info.keyVariance.layers : [0];
}

function setLayerRange() {
  const layers = layersOfTap();
  const slider = $('layer');
  slider.min = 0;
  slider.max = layers.length - 1;
  const idx = Math.max(0, layers.indexOf(state.layer));
  slider.value = idx;
  state.layer = layers[idx];
  $('layerOut').textContent = String(state.layer);
}

async function loadPage() {
  const page = await api('images', { offset: state.offset, limit: PAGE });
  state.total = page.total;
  const list = $('images');
  list.innerHTML = '';
  for (const item of page.items) {
    const li = document.createElement('li');
    li.dataset.id = item.id;
    li.title = `${item.grid.rows}×${item.grid.cols} tokens, ${item.size.width}×${item.size.height} px`;
    const name = document.createElement('span');
    name.textContent = item.id;
    const bBtn = document.createElement('button');
    bBtn.textContent = 'B';
    bBtn.addEventListener('click', (e) => { e.stopPropagation(); state.b = item.id; markList(); refreshMatch(); });
    li.append(name, bBtn);
    li.addEventListener('click', () => selectA(item.id));
    list.append(li);
  }
  $('range').textContent = page.total ? `${state.offset + 1}–${state.offset + page.items.length} of ${page.total}` : 'no images';
  if (!state.a && page.items.length) {
    state.b = page.items.length > 1 ? page.items[1].id : page.items[0].id;
    await selectA(page.items[0].id);
  }
  markList();
}

function markList() {
  for (const li of $('images').children) {
    li.classList.toggle('a', li.dataset.id === state.a);
    li.classList.toggle('b', li.dataset.id === state.b);
  }
  $('nameA').textContent = state.a ? `(${state.a})` : '';
  $('nameB').textContent = state.b ? `(${state.b})` : '';
}

async function selectA(id) {
  state.a = id;
  state.token = null;
  markList();
  await redraw();
}

// ---- views ----

async function drawA() {
  if (!state.a || !state.tap) return;
  const seq = state.seq;
  const r = await api('pca', { image: state.a, tap: state.tap, layer: state.layer });
  if (seq !== state.seq) return;
  const bytes = Uint8Array.from(atob(r.rgb), (ch) => ch.charCodeAt(0));
  const canvas = $('viewA');
  paintCells(canvas, r.rows, r.cols, (p) => [bytes[3 * p], bytes[3 * p + 1], bytes[3 * p + 2]]);
  canvas.dataset.rows = r.rows;
  canvas.dataset.cols = r.cols;
  if (state.token !== null) ring(canvas, r.rows, r.cols, state.token, '#ffffff');
}

async function drawOverlay() {
  const canvas = $('overlayA');
  const note = $('overlayNote');
  const mode = $('overlay').value;
  $('tokenLabel').style.display = mode === 'attention' ? '' : 'none';
  note.textContent = '';
  try {
    if (mode === 'mask') {
      $('overlayCaption').textContent = `probe mask, layer ${state.layer}`;
      const m = await api('mask', { image: state.a, layer: state.layer });
      paintCells(canvas, m.rows, m.cols, (p) => {
        const v = m.pred[p];
        const t = m.truth ? m.truth[p] : 0;
        return [Math.round(40 + 215 * v), Math.round(40 + 120 * t), Math.round(60 + 60 * (1 - v))];
      });
      note.textContent = `${m.task}: red = predicted foreground probability${m.truth ? ', green tint = ground truth' : ''}`;
    } else if (mode === 'keyvar') {
      $('overlayCaption').textContent = `key variance, layer ${state.layer}`;
      const k = await api('keyvar', { layer: state.layer });
      const lo = Math.min(...k.variance);
      const hi = Math.max(...k.variance);
      paintScalar(canvas, k.rows, k.cols, k.variance, lo, hi);
      for (const p of k.inputAgnostic) ring(canvas, k.rows, k.cols, p, '#e15759');
      note.textContent = `variance ${lo.toFixed(0)}–${hi.toFixed(0)}; red rings: below τ = ${k.threshold} (${k.inputAgnostic.length} input-agnostic)`;
    } else {
      const prev = $('token').value;
      const a = await api('attention', { image: state.a, layer: state.layer, ...(prev !== '' ? { token: prev } : {}) });
      const sel = $('token');
      if (sel.options.length !== a.tokens.length) {
        sel.innerHTML = '';
        a.tokens.forEach((t, i) => sel.add(new Option(JSON.stringify(t), String(i))));
      }
      sel.value = String(a.token);
      $('overlayCaption').textContent = `attention from ${JSON.stringify(a.tokens[a.token])}, layer ${state.layer}`;
      paintScalar(canvas, a.rows, a.cols, a.values, 0, Math.max(...a.values));
      note.textContent = `max ${Math.max(...a.values).toExponential(2)} (head-averaged)`;
    }
  } catch (e) {
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#eeeeee';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    note.textContent = e.status === 404 ? `not available: ${e.message}` : `error: ${e.message}`;
  }
}

async function refreshMatch() {
  const canvas = $('viewB');
  if (state.token === null || !state.b || !state.tap) {
    $('matchNote').textContent = 'click a token in A';
    return;
  }
  const seq = state.seq;
  const m = await api('match', { a: state.a, b: state.b, tap: state.tap, layer: state.layer, token: state.token });
  if (seq !== state.seq) return;
  const lo = Math.min(...m.sims);
  paintScalar(canvas, m.rows, m.cols, m.sims, lo, m.score);
  ring(canvas, m.rows, m.cols, m.best, '#e15759');
  canvas.dataset.best = m.best;
  $('matchNote').textContent = `token ${state.token} of A → best match (${m.bestRow}, ${m.bestCol}) in B, cosine ${m.score.toFixed(3)}`;
}

async function redraw() {
  state.seq++;
  status(`layer ${state.layer} · ${state.tap ? `lm.${state.layer}.${state.tap}` : 'no store'}`);
  try {
    await Promise.all([drawA(), drawOverlay(), refreshMatch()]);
    document.body.dataset.ready = String(state.seq);
  } catch (e) {
    status(`error: ${e.message}`);
  }
}

// ---- events ----

$('layer').addEventListener('input', () => {
  state.layer = layersOfTap()[Number($('layer').value)];
  $('layerOut').textContent = String(state.layer);
  redraw();
});
$('tap').addEventListener('change', () => { state.tap = $('tap').value; setLayerRange(); redraw(); });
$('overlay').addEventListener('change', () => drawOverlay());
$('token').addEventListener('change', () => drawOverlay());
$('prev').addEventListener('click', () => { if (state.offset > 0) { state.offset = Math.max(0, state.offset - PAGE); loadPage(); } });
$('next').addEventListener('click', () => { if (state.offset + PAGE < state.total) { state.offset += PAGE; loadPage(); } });
$('viewA').addEventListener('click', (e) => {
  const canvas = $('viewA');
  const rows = Number(canvas.dataset.rows);
  const cols = Number(canvas.dataset.cols);
  if (!rows) return;
  const rect = canvas.getBoundingClientRect();
  const s = cellSize(canvas, rows, cols) * (rect.width / canvas.width);
  const c = Math.floor((e.clientX - rect.left) / s);
  const r = Math.floor((e.clientY - rect.top) / s);
  if (r < 0 || c < 0 || r >= rows || c >= cols) return;
  state.token = r * cols + c;
  redraw();
});

(async () => {
  try {
    await loadInfo();
    if (state.info.hasStore) await loadPage();
    else await redraw();
  } catch (e) {
    status(`error: ${e.message}`);
  }
})();
