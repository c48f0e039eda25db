// The dashboard: hash routes to pages, one shared event stream, relative times kept fresh.
//
// A page module exports mount(root, params) and returns {onEvent(event), unmount()}; the
// router mounts one at a time and hands it every event of /api/events. Pages never reload
// the document: they patch what an event says in place, or refetch their data (coalesced).

import {onKeyChange, setApiKey, setKeyPrompt, apiKey} from './api.js';
import {promptForKey} from './dialogs.js';
import {h, replace} from './dom.js';
import {tickAges} from './format.js';
import * as live from './live.js';
import * as config from './pages/config.js';
import * as nodes from './pages/nodes.js';
import * as overview from './pages/overview.js';
import * as task from './pages/task.js';
import * as tasks from './pages/tasks.js';

const root = document.getElementById('page');
let current = null;

/** '#/tasks/cam-1?x=1' -> {page: 'task', params: {id: 'cam-1'}, query: URLSearchParams}. */
export function parseHash(hash) {
  const raw = hash.replace(/^#\/?/, '');
  const [path, qs = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const query = new URLSearchParams(qs);
  if (!parts.length || parts[0] === 'overview') return {page: overview, name: 'overview', query};
  if (parts[0] === 'tasks' && parts.length > 1) return {page: task, name: 'tasks', id: parts.slice(1).join('/'), query};
  if (parts[0] === 'tasks') return {page: tasks, name: 'tasks', query};
  if (parts[0] === 'nodes') return {page: nodes, name: 'nodes', query};
  if (parts[0] === 'config') return {page: config, name: 'config', query};
  return {page: null, name: '', query};
}

function route() {
  const target = parseHash(location.hash);
  if (current) {
    current.unmount();
    current = null;
  }
  for (const a of document.querySelectorAll('.tabs a')) {
    a.classList.toggle('active', a.dataset.page === target.name);
    if (a.dataset.page === target.name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!target.page) {
    replace(root, h('p', {class: 'empty'}, 'No such page. ', h('a', {href: '#/overview'}, 'Go to the overview')));
    return;
  }
  root.replaceChildren();
  current = target.page.mount(root, target);
  document.title = `${target.id || target.name[0].toUpperCase() + target.name.slice(1)} · Skalds`;
}

function showLive(state, detail) {
  const el = document.getElementById('live');
  el.dataset.state = state;
  const text = {open: 'live', connecting: 'connecting…', retrying: 'reconnecting…', unavailable: 'no live updates', stopped: 'stopped'}[state] || state;
  el.textContent = text;
  el.title = detail ? `Event stream: ${text} (${detail})` : `Event stream: ${text}`;
}

function showKeyButton() {
  document.getElementById('forget-key').hidden = !apiKey();
}

setKeyPrompt(promptForKey);
onKeyChange(() => {
  showKeyButton();
  live.restart();
});
showKeyButton();
document.getElementById('forget-key').addEventListener('click', () => {
  setApiKey(null);
});
window.addEventListener('hashchange', route);
live.onState(showLive);
live.on((event) => {
  if (current && current.onEvent) current.onEvent(event);
});
setInterval(() => tickAges(root), 1000);
route();
live.start();
