// How values read on screen: states with their colours, times as "3 s ago" with the exact
// time on hover, progress as a bar. Relative times are refreshed by one ticker (tickAges).

import {h} from './dom.js';

export const STATES = ['Created', 'Assigning', 'Running', 'Paused', 'Finished', 'Failed', 'Cancelled'];
export const LIVE_STATES = new Set(['Created', 'Assigning', 'Running', 'Paused']);
export const TERMINAL_STATES = new Set(['Finished', 'Failed', 'Cancelled']);

/** A coloured badge for a task state (or a node's online/offline). */
export function stateBadge(state) {
  const name = state || 'unknown';
  return h('span', {class: `badge state-${name.toLowerCase()}`, dataset: {state: name}}, name);
}

export function nodeBadge(status) {
  const online = status === 'online';
  return h('span', {class: `badge node-${online ? 'online' : 'offline'}`, dataset: {status}}, online ? 'online' : 'offline');
}

/** "–" for what is not there (fields some backends do not report yet). */
export function dash(value, render = String) {
  return value === null || value === undefined || value === '' ? '–' : render(value);
}

export function absolute(ms) {
  return ms ? new Date(ms).toLocaleString() : '–';
}

export function clock(ms) {
  if (!ms) return '–';
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** A duration in words: 850 ms, 12 s, 4 min, 3 h, 2 d. */
export function duration(ms) {
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(abs)} ms`;
  if (abs < 60_000) return `${Math.round(abs / 1000)} s`;
  if (abs < 3_600_000) return `${Math.round(abs / 60_000)} min`;
  if (abs < 86_400_000) return `${Math.round(abs / 3_600_000)} h`;
  return `${Math.round(abs / 86_400_000)} d`;
}

function ageText(ms, now = Date.now()) {
  const delta = now - ms;
  if (delta < 0) return `in ${duration(-delta)}`;
  if (delta < 1000) return 'just now';
  return `${duration(delta)} ago`;
}

/** "3 s ago", kept current by tickAges(); the exact time on hover. */
export function ago(ms) {
  if (!ms) return h('span', {class: 'muted'}, '–');
  return h('time', {class: 'ago', datetime: new Date(ms).toISOString(), title: absolute(ms), dataset: {ms}}, ageText(ms));
}

/** Refresh every relative time on the page (called once a second). */
export function tickAges(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll('time.ago[data-ms]')) {
    const text = ageText(Number(el.dataset.ms), now);
    if (el.textContent !== text) el.textContent = text;
    const stale = el.dataset.staleAfter;
    if (stale) el.classList.toggle('stale', now - Number(el.dataset.ms) > Number(stale));
  }
}

/** A progress bar for a fraction 0..1 (or an empty track when there is none). */
export function progressBar(progress, message) {
  const known = typeof progress === 'number' && Number.isFinite(progress);
  const pct = known ? Math.max(0, Math.min(100, progress * 100)) : 0;
  return h(
    'div',
    {class: 'progress', title: message || (known ? `${pct.toFixed(0)} %` : 'no progress reported')},
    h('div', {class: 'progress-track', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': known ? pct.toFixed(0) : null},
      h('div', {class: 'progress-fill', style: {width: `${pct}%`}})),
    h('span', {class: 'progress-text'}, known ? `${pct.toFixed(0)} %` : '', message ? ` ${message}` : ''),
  );
}

/** running / capacity as a small bar, red when full. */
export function loadBar(running, capacity) {
  const pct = capacity > 0 ? Math.min(100, (100 * running) / capacity) : 0;
  const level = pct >= 100 ? 'full' : pct >= 75 ? 'high' : 'ok';
  return h(
    'div',
    {class: `load load-${level}`, title: `${running} running of ${capacity}`},
    h('div', {class: 'load-track'}, h('div', {class: 'load-fill', style: {width: `${pct}%`}})),
    h('span', {class: 'load-text'}, `${running} / ${capacity}`),
  );
}

export function labelChips(labels) {
  const entries = Object.entries(labels || {});
  if (!entries.length) return h('span', {class: 'muted'}, '–');
  return entries.map(([k, v]) => h('span', {class: 'chip'}, `${k}=${v}`));
}

/** The first few items and "+N more" (all of them on hover). */
export function someOf(items, shown = 3) {
  if (!items || !items.length) return h('span', {class: 'muted'}, '–');
  const rest = items.length - shown;
  return h('span', {title: items.join(', ')}, items.slice(0, shown).join(', '), rest > 0 ? h('span', {class: 'muted'}, ` +${rest} more`) : null);
}
