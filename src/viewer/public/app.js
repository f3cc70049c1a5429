// kvlens viewer page: plain JS, no framework, no network beyond this server. The server computes everything
// (PCA colours, cosine matches, decoded photos); this file fetches JSON and images and paints them: the photo first,
// the token-grid overlay on top of it (stretched over the whole photo) at the chosen opacity, a colour scale for
// every scalar map, and the marked point on A with its best match on B (the paper's correspondence figure).
'use strict';

const PAGE = 50;
const BOX = 384; // the longer side of a panel, CSS pixels
const state = {
  info: null, offset: 0, total: 0, items: new Map(), a: null, b: null, tap: null, layer: 0, view: null, token: null, seq: 0,
};
const $ = (id) => document.getElementById(id);

async function api(path, params) {
  const url = `/api/${path}?${new URLSearchParams(params)}`;
  const r = await fetch(url);
  const body = await r.json();
  if (!r.ok) throw Object.assign(new Error(body.error || r.statusText), { status: r.status });
  return body;
}

const photoUrl = (id, size) => `/api/photo?${new URLSearchParams({ image: id, size: String(size) })}`;

function status(msg) {
  $('status').textContent = msg;
}

// ---- naming ----

const TAP_NAMES = { 'attn.v': 'values', 'attn.k': 'keys (post-RoPE)', 'attn.q': 'queries', resid: 'residual stream', 'attn.out': 'attention output', 'mlp.out': 'MLP output' };
const tapWords = (fam) => TAP_NAMES[fam] ?? fam;
const VIEW_NAMES = { base: 'base view', highres: 'high-res / native grid' };
const viewWords = (v) => VIEW_NAMES[v] ?? `${v} view`;

function gridOf(id) {
  const item = state.items.get(id);
  if (!item) return null;
  return (state.view && item.views && item.views[state.view]) || item.grid;
}

// ---- colour ----

// Viridis-like ramp (dark blue -> teal -> yellow), t in [0, 1].
const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function ramp(t) {
  const x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  return RAMP[i].map((v, k) => Math.round(v + (RAMP[i + 1][k] - v) * f));
}

/** The colour-scale strip under a panel: a gradient with its end values and what it measures (hidden when null). */
function setScale(id, scale) {
  const el = $(id);
  if (!scale) { el.style.display = 'none'; return; }
  el.style.display = '';
  const c = el.querySelector('canvas');
  const ctx = c.getContext('2d');
  for (let x = 0; x < c.width; x++) {
    const [r, g, b, a] = scale.color(x / (c.width - 1));
    ctx.fillStyle = `rgba(${r},${g},${b},${a ?? 1})`;
    ctx.fillRect(x, 0, 1, c.height);
  }
  el.querySelector('.lo').textContent = scale.lo;
  el.querySelector('.hi').textContent = scale.hi;
  el.querySelector('.what').textContent = scale.what;
  el.dataset.what = scale.what;
}

function fmt(x) {
  if (x === 0) return '0';
  const a = Math.abs(x);
  return a >= 1000 || a < 0.01 ? x.toExponential(2) : x.toFixed(a >= 10 ? 1 : 3);
}

// ---- painting ----

const photoCache = new Map();
function loadPhoto(id) {
  if (!photoCache.has(id)) {
    photoCache.set(id, new Promise((resolve) => {
      const img = new Image();
      img.onload = () => resolve({ img, error: null });
      img.onerror = () => {
        // the server says why in its JSON body
        fetch(photoUrl(id, 2 * BOX)).then((r) => r.json()).then((b) => resolve({ img: null, error: b.error }), () => resolve({ img: null, error: 'cannot load' }));
      };
      img.src = photoUrl(id, 2 * BOX);
    }));
  }
  return photoCache.get(id);
}

/** Size the canvas to the photo's aspect (or the grid's when there is no photo) within BOX and draw the photo. */
function paintPhoto(canvas, photo, grid) {
  const w0 = photo.img ? photo.img.naturalWidth : grid ? grid.cols : 1;
  const h0 = photo.img ? photo.img.naturalHeight : grid ? grid.rows : 1;
  const s = BOX / Math.max(w0, h0);
  canvas.width = Math.round(w0 * s);
  canvas.height = Math.round(h0 * s);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#dddddd';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (photo.img) {
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(photo.img, 0, 0, canvas.width, canvas.height);
  }
}

/** Draw a rows x cols grid of RGBA cells stretched over the whole canvas (the grid covers the photo). */
function paintGrid(canvas, rows, cols, rgbaOf) {
  const off = document.createElement('canvas');
  off.width = cols;
  off.height = rows;
  const octx = off.getContext('2d');
  const img = octx.createImageData(cols, rows);
  for (let p = 0; p < rows * cols; p++) {
    const [r, g, b, a] = rgbaOf(p);
    img.data.set([r, g, b, Math.round(255 * a)], 4 * p);
  }
  octx.putImageData(img, 0, 0);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
}

function cellRect(canvas, rows, cols, p) {
  const cw = canvas.width / cols;
  const ch = canvas.height / rows;
  return { x: (p % cols) * cw, y: Math.floor(p / cols) * ch, w: cw, h: ch };
}

function ring(canvas, rows, cols, p, color, width = 2) {
  const ctx = canvas.getContext('2d');
  const r = cellRect(canvas, rows, cols, p);
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.strokeRect(r.x + width / 2, r.y + width / 2, r.w - width, r.h - width);
}

/** A point marker: a circle with a cross, white on a dark halo so it reads on any photo. */
function marker(canvas, rows, cols, p, color) {
  const ctx = canvas.getContext('2d');
  const r = cellRect(canvas, rows, cols, p);
  const x = r.x + r.w / 2;
  const y = r.y + r.h / 2;
  const rad = Math.max(7, Math.min(r.w, r.h) * 0.6);
  for (const [c, w] of [['rgba(0,0,0,0.8)', 5], [color, 2.5]]) {
    ctx.strokeStyle = c;
    ctx.lineWidth = w;
    ctx.beginPath();
    ctx.arc(x, y, rad, 0, 2 * Math.PI);
    ctx.moveTo(x - rad - 4, y); ctx.lineTo(x - rad / 2, y);
    ctx.moveTo(x + rad / 2, y); ctx.lineTo(x + rad + 4, y);
    ctx.moveTo(x, y - rad - 4); ctx.lineTo(x, y - rad / 2);
    ctx.moveTo(x, y + rad / 2); ctx.lineTo(x, y + rad + 4);
    ctx.stroke();
  }
}

/** Outline of the cells where `mask` is set (edges between a set cell and an unset one or the border). */
function outline(canvas, rows, cols, mask, color) {
  const ctx = canvas.getContext('2d');
  const cw = canvas.width / cols;
  const ch = canvas.height / rows;
  const on = (r, c) => r >= 0 && c >= 0 && r < rows && c < cols && mask[r * cols + c] >= 0.5;
  ctx.strokeStyle = color;
  ctx.lineWidth = 2.5;
  ctx.beginPath();
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      if (!on(r, c)) continue;
      if (!on(r - 1, c)) { ctx.moveTo(c * cw, r * ch); ctx.lineTo((c + 1) * cw, r * ch); }
      if (!on(r + 1, c)) { ctx.moveTo(c * cw, (r + 1) * ch); ctx.lineTo((c + 1) * cw, (r + 1) * ch); }
      if (!on(r, c - 1)) { ctx.moveTo(c * cw, r * ch); ctx.lineTo(c * cw, (r + 1) * ch); }
      if (!on(r, c + 1)) { ctx.moveTo((c + 1) * cw, r * ch); ctx.lineTo((c + 1) * cw, (r + 1) * ch); }
    }
  }
  ctx.stroke();
}

const opacity = () => Number($('opacity').value) / 100;

// ---- data ----

async function loadInfo() {
  state.info = await api('info', {});
  $('title').textContent = `kvlens viewer — ${state.info.title}`;
  const tapSel = $('tap');
  tapSel.innerHTML = '';
  for (const t of state.info.taps) tapSel.add(new Option(`lm.{L}.${t.name} — ${tapWords(t.name)}`, t.name));
  const v = state.info.taps.find((t) => t.name === 'attn.v');
  state.tap = v ? 'attn.v' : state.info.taps[0]?.name ?? null;
  if (state.tap) tapSel.value = state.tap;
  const viewSel = $('view');
  viewSel.innerHTML = '';
  for (const name of state.info.views) viewSel.add(new Option(viewWords(name), name));
  state.view = state.info.views.includes('base') ? 'base' : state.info.views[0] ?? null;
  if (state.view) viewSel.value = state.view;
  // Offer what this directory can draw; the default is the run's probe mask when it wrote any, else PCA.
  const files = state.info.runFiles ?? {};
  const can = { pca: state.info.hasStore, similarity: state.info.hasStore, mask: files.masks, attention: files.attention, keyvar: !!state.info.keyVariance, none: true };
  for (const opt of $('overlay').options) opt.disabled = !can[opt.value];
  $('overlay').value = files.masks ? 'mask' : state.info.hasStore ? 'pca' : state.info.keyVariance ? 'keyvar' : 'none';
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
    state.items.set(item.id, item);
    const li = document.createElement('li');
    li.dataset.id = item.id;
    li.title = `${Object.entries(item.views ?? { base: item.grid }).map(([v, g]) => `${v} ${g.rows}×${g.cols}`).join(', ')} tokens; ${item.size.width}×${item.size.height} px`;
    const thumb = document.createElement('img');
    thumb.loading = 'lazy';
    thumb.alt = '';
    thumb.src = photoUrl(item.id, 80);
    thumb.addEventListener('error', () => { thumb.style.visibility = 'hidden'; });
    const name = document.createElement('span');
    name.textContent = item.id;
    const bBtn = document.createElement('button');
    bBtn.textContent = 'B';
    bBtn.title = 'show as image B';
    bBtn.addEventListener('click', (e) => { e.stopPropagation(); state.b = item.id; markList(); redraw(); });
    li.append(thumb, name, bBtn);
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
}

async function selectA(id) {
  state.a = id;
  const g = gridOf(id);
  // Start with the centre token marked, so B shows a correspondence straight away.
  state.token = g ? Math.floor(g.rows / 2) * g.cols + Math.floor(g.cols / 2) : null;
  markList();
  await redraw();
}

// ---- panels ----

function tapCaption() {
  return state.tap ? `lm.${state.layer}.${state.tap} (${tapWords(state.tap)}), layer ${state.layer}` : '';
}

async function drawA() {
  const canvas = $('viewA');
  const note = $('noteA');
  const mode = $('overlay').value;
  $('tokenLabel').style.display = mode === 'attention' ? '' : 'none';
  const seq = state.seq;
  const grid = state.a ? gridOf(state.a) : state.info.keyVariance?.grid ?? null;
  const photo = state.a ? await loadPhoto(state.a) : { img: null, error: 'no image' };
  let scale = null;
  let caption = '';
  let text = photo.img ? '' : `photo not available: ${photo.error}. `;
  let after = () => undefined;
  let paint = () => undefined;
  const alpha = opacity();
  try {
    if (mode === 'pca') {
      const r = await api('pca', { image: state.a, tap: state.tap, layer: state.layer, ...(state.view ? { view: state.view } : {}) });
      const bytes = Uint8Array.from(atob(r.rgb), (ch) => ch.charCodeAt(0));
      caption = `PCA → RGB of ${tapCaption()}, ${viewWords(state.view)} ${r.rows}×${r.cols}`;
      paint = () => paintGrid(canvas, r.rows, r.cols, (p) => [bytes[3 * p], bytes[3 * p + 1], bytes[3 * p + 2], alpha]);
      text += 'colours: the first three principal components of this image\'s tokens (similar colour = similar vectors)';
    } else if (mode === 'similarity') {
      if (state.token === null) throw Object.assign(new Error('click a point on A'), { status: 404 });
      const m = await api('match', { a: state.a, b: state.a, tap: state.tap, layer: state.layer, token: state.token, ...(state.view ? { view: state.view } : {}) });
      const lo = Math.min(...m.sims);
      caption = `cosine similarity to the marked point, ${tapCaption()}, ${viewWords(state.view)} ${m.rows}×${m.cols}`;
      paint = () => paintGrid(canvas, m.rows, m.cols, (p) => [...ramp((m.sims[p] - lo) / (1 - lo || 1)), alpha]);
      scale = { lo: fmt(lo), hi: '1', what: 'cosine similarity to the marked token', color: (t) => ramp(t) };
    } else if (mode === 'mask') {
      const m = await api('mask', { image: state.a, layer: state.layer });
      caption = `probe mask (${m.task}) vs ground truth, layer ${state.layer}, ${m.rows}×${m.cols} grid`;
      paint = () => paintGrid(canvas, m.rows, m.cols, (p) => [230, 40, 40, alpha * m.pred[p]]);
      after = () => { if (m.truth) outline(canvas, m.rows, m.cols, m.truth, '#3cf03c'); };
      scale = { lo: '0', hi: '1', what: `red: predicted foreground probability${m.truth ? '; green outline: ground truth' : ''}`, color: (t) => [230, 40, 40, t] };
    } else if (mode === 'keyvar') {
      const k = await api('keyvar', { layer: state.layer });
      const lo = Math.min(...k.variance);
      const hi = Math.max(...k.variance);
      caption = `key variance across images, layer ${state.layer}, ${k.rows}×${k.cols} positions`;
      paint = () => paintGrid(canvas, k.rows, k.cols, (p) => [...ramp((k.variance[p] - lo) / (hi - lo || 1)), state.a ? alpha : 1]);
      after = () => { for (const p of k.inputAgnostic) ring(canvas, k.rows, k.cols, p, '#e15759'); };
      scale = { lo: fmt(lo), hi: fmt(hi), what: `variance of the cached key per position; red boxes: below τ = ${fmt(k.threshold)} (${k.inputAgnostic.length} input-agnostic)`, color: (t) => ramp(t) };
    } else if (mode === 'attention') {
      const prev = $('token').value;
      const a = await api('attention', { image: state.a, layer: state.layer, ...(prev !== '' ? { token: prev } : {}) });
      const sel = $('token');
      if (sel.options.length !== a.tokens.length) {
        sel.innerHTML = '';
        a.tokens.forEach((t, i) => sel.add(new Option(JSON.stringify(t), String(i))));
      }
      sel.value = String(a.token);
      const hi = Math.max(...a.values);
      caption = `attention from ${JSON.stringify(a.tokens[a.token])} to the image, layer ${state.layer}, ${a.rows}×${a.cols}`;
      paint = () => paintGrid(canvas, a.rows, a.cols, (p) => [...ramp(a.values[p] / (hi || 1)), alpha]);
      scale = { lo: '0', hi: fmt(hi), what: 'attention probability (averaged over heads)', color: (t) => ramp(t) };
    } else {
      caption = 'photo only';
    }
  } catch (e) {
    text += e.status === 404 ? `overlay not available: ${e.message}` : `error: ${e.message}`;
    caption = caption || 'overlay not available';
  }
  if (seq !== state.seq) return;
  paintPhoto(canvas, photo, grid);
  paint();
  after();
  if (grid && state.token !== null && state.a) marker(canvas, grid.rows, grid.cols, state.token, '#ffffff');
  canvas.dataset.rows = grid ? grid.rows : '';
  canvas.dataset.cols = grid ? grid.cols : '';
  canvas.dataset.photo = photo.img ? '1' : '0';
  $('captionA').textContent = `A: ${state.a ?? ''} — ${caption}`;
  note.textContent = text;
  setScale('scaleA', scale);
}

async function drawB() {
  const canvas = $('viewB');
  const seq = state.seq;
  if (!state.b || !state.tap) {
    $('matchNote').textContent = state.info.hasStore ? 'choose image B' : '';
    setScale('scaleB', null);
    return;
  }
  const photo = await loadPhoto(state.b);
  const grid = gridOf(state.b);
  let m = null;
  let err = '';
  if (state.token !== null) {
    try {
      m = await api('match', { a: state.a, b: state.b, tap: state.tap, layer: state.layer, token: state.token, ...(state.view ? { view: state.view } : {}) });
    } catch (e) {
      err = e.message;
    }
  }
  if (seq !== state.seq) return;
  paintPhoto(canvas, photo, grid);
  $('captionB').textContent = `B: ${state.b} — cosine similarity to the marked point of A, ${tapCaption()}`;
  if (!m) {
    $('matchNote').textContent = err ? `error: ${err}` : 'click a point on A';
    setScale('scaleB', null);
    return;
  }
  const lo = Math.min(...m.sims);
  const alpha = opacity();
  paintGrid(canvas, m.rows, m.cols, (p) => [...ramp((m.sims[p] - lo) / (m.score - lo || 1)), alpha]);
  marker(canvas, m.rows, m.cols, m.best, '#ff5a36');
  canvas.dataset.best = m.best;
  setScale('scaleB', { lo: fmt(lo), hi: fmt(m.score), what: 'cosine similarity to the marked token of A; orange marker: best match', color: (t) => ramp(t) });
  $('matchNote').textContent = `${photo.img ? '' : `photo not available: ${photo.error}. `}token (${Math.floor(state.token / m.aCols)}, ${state.token % m.aCols}) of A → best match (${m.bestRow}, ${m.bestCol}) in B, cosine ${m.score.toFixed(3)}`;
}

async function redraw() {
  state.seq++;
  const seq = state.seq;
  status(`layer ${state.layer} · ${state.tap ? `lm.${state.layer}.${state.tap}` : 'no store'}${state.view ? ` · ${viewWords(state.view)}` : ''}`);
  try {
    await Promise.all([drawA(), drawB()]);
    if (seq === state.seq) document.body.dataset.ready = String(state.seq);
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
$('view').addEventListener('change', () => {
  state.view = $('view').value;
  const g = state.a ? gridOf(state.a) : null;
  state.token = g ? Math.floor(g.rows / 2) * g.cols + Math.floor(g.cols / 2) : null;
  redraw();
});
$('overlay').addEventListener('change', () => redraw());
$('token').addEventListener('change', () => redraw());
$('opacity').addEventListener('input', () => { $('opacityOut').textContent = `${$('opacity').value}%`; redraw(); });
$('prev').addEventListener('click', () => { if (state.offset > 0) { state.offset = Math.max(0, state.offset - PAGE); loadPage(); } });
$('next').addEventListener('click', () => { if (state.offset + PAGE < state.total) { state.offset += PAGE; loadPage(); } });
$('viewA').addEventListener('click', (e) => {
  const canvas = $('viewA');
  const rows = Number(canvas.dataset.rows);
  const cols = Number(canvas.dataset.cols);
  if (!rows || !state.a) return;
  const rect = canvas.getBoundingClientRect();
  const c = Math.floor(((e.clientX - rect.left) / rect.width) * cols);
  const r = Math.floor(((e.clientY - rect.top) / rect.height) * rows);
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
