// Tasks: filter by state, class and node, search by id, page through; create a task; act on
// one. The filters live in the address (#/tasks?state=Running&page=2) so back and reload
// keep them. Progress beats patch their row in place; other events refetch the page.

import {createTask, actionButtons, workerSchemas} from '../actions.js';
import {api} from '../api.js';
import {coalesce, empty, escapeRegExp, h, replace} from '../dom.js';
import {STATES, TERMINAL_STATES, ago, dash, progressBar, stateBadge} from '../format.js';

const PAGE_SIZES = [20, 50, 100];

function readFilters(query) {
  return {
    state: query.get('state') || '',
    cls: query.get('class') || '',
    node: query.get('node') || '',
    q: query.get('q') || '',
    page: Math.max(1, Number(query.get('page')) || 1),
    size: PAGE_SIZES.includes(Number(query.get('size'))) ? Number(query.get('size')) : 20,
    order: query.get('order') === 'oldest' ? 'oldest' : 'newest',
  };
}

function writeFilters(f) {
  const q = new URLSearchParams();
  if (f.state) q.set('state', f.state);
  if (f.cls) q.set('class', f.cls);
  if (f.node) q.set('node', f.node);
  if (f.q) q.set('q', f.q);
  if (f.page > 1) q.set('page', String(f.page));
  if (f.size !== 20) q.set('size', String(f.size));
  if (f.order !== 'newest') q.set('order', f.order);
  const qs = q.toString();
  // replaceState: typing in the search box should not fill the history.
  history.replaceState(null, '', qs ? `#/tasks?${qs}` : '#/tasks');
}

function options(select, values, chosen, allLabel) {
  const list = [...new Set([...values, ...(chosen ? [chosen] : [])])].sort();
  replace(select, h('option', {value: ''}, allLabel), list.map((v) => h('option', {value: v, selected: v === chosen}, v)));
}

function versions(t) {
  const applied = t.appliedVersion >= t.desiredVersion;
  return h('span', {class: applied ? 'muted' : 'pending', title: applied ? 'the worker runs the latest attachments' : 'the worker has not applied the latest attachments yet'},
    `${t.appliedVersion}/${t.desiredVersion}`);
}

function progressCell(t) {
  if (t.lifecycleStatus === 'Failed') return h('span', {class: 'error-text', title: t.error || ''}, dash(t.error));
  // An ended task has no worker left to report progress.
  if (TERMINAL_STATES.has(t.lifecycleStatus)) return h('span', {class: 'muted'}, '–');
  return progressBar(t.progress, t.message);
}

function heartbeat(t) {
  if (!t.heartbeatAt) return h('span', {class: 'muted'}, '–');
  const el = ago(t.heartbeatAt);
  if (t.lifecycleStatus === 'Running' || t.lifecycleStatus === 'Paused') el.dataset.staleAfter = '5000';
  return el;
}

export function mount(root, {query}) {
  const f = readFilters(query);
  const state = h('select', {name: 'state', 'aria-label': 'State'}, h('option', {value: ''}, 'All states'), STATES.map((s) => h('option', {value: s, selected: s === f.state}, s)));
  const cls = h('select', {name: 'class', 'aria-label': 'Class'});
  const node = h('select', {name: 'node', 'aria-label': 'Node'});
  options(cls, [], f.cls, 'All classes');
  options(node, [], f.node, 'All nodes');
  const search = h('input', {type: 'search', name: 'q', placeholder: 'Search by id', value: f.q, 'aria-label': 'Search by id'});
  const size = h('select', {name: 'size', 'aria-label': 'Page size'}, PAGE_SIZES.map((n) => h('option', {value: String(n), selected: n === f.size}, `${n} a page`)));
  const order = h('select', {name: 'order', 'aria-label': 'Order'}, h('option', {value: 'newest', selected: f.order === 'newest'}, 'Newest first'), h('option', {value: 'oldest', selected: f.order === 'oldest'}, 'Oldest first'));
  const tbody = h('tbody', {});
  const pager = h('div', {class: 'pager'});
  const error = h('p', {class: 'form-error', hidden: true});
  const table = h('table', {class: 'grid tasks'},
    h('thead', {}, h('tr', {},
      h('th', {}, 'Task'), h('th', {}, 'Class'), h('th', {}, 'State'), h('th', {}, 'Node'),
      h('th', {class: 'wide'}, 'Progress'), h('th', {}, 'Heartbeat'), h('th', {title: 'applied / desired attachments version'}, 'Version'),
      h('th', {}, 'Updated'), h('th', {}, 'Actions'))),
    tbody);
  const page = h('div', {class: 'page tasks-page'},
    h('div', {class: 'page-head'},
      h('h1', {}, 'Tasks'),
      h('button', {type: 'button', class: 'primary', id: 'new-task', onclick: () => createTask((t) => {
        location.hash = `#/tasks/${encodeURIComponent(t.id)}`;
      })}, '+ New task')),
    h('form', {class: 'filters', onsubmit: (e) => e.preventDefault()}, state, cls, node, search, order, size),
    error,
    h('div', {class: 'table-wrap'}, table),
    pager);
  root.append(page);

  const rows = new Map();
  let shown = [];

  function row(t) {
    return h('tr', {dataset: {task: t.id, state: t.lifecycleStatus}},
      h('td', {class: 'id'}, h('a', {href: `#/tasks/${encodeURIComponent(t.id)}`}, t.id), t.name ? h('div', {class: 'muted small'}, t.name) : null),
      h('td', {}, t.className),
      h('td', {}, stateBadge(t.lifecycleStatus)),
      h('td', {}, t.executor ? h('a', {href: `#/tasks?node=${encodeURIComponent(t.executor)}`}, t.executor) : h('span', {class: 'muted'}, 'unassigned')),
      h('td', {class: 'wide'}, progressCell(t)),
      h('td', {}, heartbeat(t)),
      h('td', {}, versions(t)),
      h('td', {}, ago(t.updateDateTime)),
      h('td', {}, actionButtons(t, () => refresh(), {compact: true})));
  }

  function render(result) {
    shown = result.items;
    rows.clear();
    if (!shown.length) {
      const filtered = f.state || f.cls || f.node || f.q;
      replace(tbody, h('tr', {}, h('td', {colspan: 9}, empty(filtered ? 'No task matches these filters.' : 'No tasks yet. Create one with “New task”.'))));
    } else {
      replace(tbody, shown.map((t) => {
        const r = row(t);
        rows.set(t.id, r);
        return r;
      }));
    }
    const pages = Math.max(1, Math.ceil(result.total / f.size));
    const first = result.total ? (f.page - 1) * f.size + 1 : 0;
    const last = Math.min(result.total, f.page * f.size);
    replace(pager,
      h('span', {class: 'muted', dataset: {total: result.total}}, `${first}–${last} of ${result.total}`),
      h('button', {type: 'button', class: 'secondary small', disabled: f.page <= 1, onclick: () => go(f.page - 1)}, '‹ Previous'),
      h('span', {}, `page ${f.page} of ${pages}`),
      h('button', {type: 'button', class: 'secondary small', disabled: f.page >= pages, onclick: () => go(f.page + 1)}, 'Next ›'));
    page.dataset.loaded = 'true';
  }

  async function load() {
    try {
      const result = await api('/api/tasks', {
        query: {
          lifecycleStatus: f.state,
          className: f.cls ? `^${escapeRegExp(f.cls)}$` : '',
          executor: f.node,
          id: f.q ? escapeRegExp(f.q) : '',
          page: f.page,
          pageSize: f.size,
          order: f.order,
        },
      });
      error.hidden = true;
      if (f.page > 1 && !result.items.length && result.total) {
        f.page = Math.ceil(result.total / f.size);
        writeFilters(f);
        return load();
      }
      render(result);
    } catch (err) {
      error.textContent = `Could not list tasks: ${err.message}`;
      error.hidden = false;
    }
  }

  const refresh = coalesce(load, 300);

  async function loadChoices() {
    try {
      const [schemas, stored, skalds] = await Promise.all([workerSchemas(), api('/api/tasks/classnames'), api('/api/skalds')]);
      options(cls, [...Object.keys(schemas), ...(stored || [])], f.cls, 'All classes');
      options(node, (skalds.items || []).map((n) => n.id), f.node, 'All nodes');
    } catch (err) {
      console.warn('filter choices', err);
    }
  }

  function go(p) {
    f.page = p;
    writeFilters(f);
    refresh.now();
  }

  function changed() {
    Object.assign(f, {state: state.value, cls: cls.value, node: node.value, q: search.value.trim(), size: Number(size.value), order: order.value, page: 1});
    writeFilters(f);
    refresh.now();
  }
  for (const el of [state, cls, node, size, order]) el.addEventListener('change', changed);
  let typing = null;
  search.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(changed, 250);
  });

  refresh.now();
  loadChoices();

  return {
    onEvent(event) {
      const data = event.data || {};
      if (event.event === 'task.progress') {
        const t = shown.find((x) => x.id === data.taskId);
        const r = rows.get(data.taskId);
        if (!t || !r) return;
        t.progress = data.progress;
        t.message = data.message;
        t.heartbeatAt = data.heartbeatAt;
        // Patch the two cells only: the row's buttons stay the same elements under the pointer.
        replace(r.cells[4], progressCell(t));
        replace(r.cells[5], heartbeat(t));
        return;
      }
      if (event.event.startsWith('node.')) {
        if (event.event !== 'node.changed') loadChoices();
        return;
      }
      refresh();
    },
    unmount() {
      refresh.stop();
      clearTimeout(typing);
    },
  };
}
