// Nodes: every node and edge seen, online first; a node whose lease ran out shows offline
// ("lost"). CPU and memory are shown when a node reports them.

import {api} from '../api.js';
import {coalesce, empty, h, replace} from '../dom.js';
import {ago, dash, labelChips, loadBar, nodeBadge, someOf} from '../format.js';

function heartbeat(ms) {
  const el = ago(ms);
  // A lease is a few seconds long: a heartbeat older than that is the sign of a lost node.
  if (ms) el.dataset.staleAfter = '10000';
  return el;
}

function row(n) {
  const online = n.status === 'online';
  return h('tr', {class: online ? '' : 'offline', dataset: {node: n.id, status: n.status}},
    h('td', {class: 'id'}, h('span', {class: 'node-id'}, n.id), n.host && n.host !== n.id ? h('div', {class: 'muted small'}, `${n.host} · pid ${n.pid}`) : h('div', {class: 'muted small'}, `pid ${n.pid}`)),
    h('td', {}, nodeBadge(n.status), !online ? h('div', {class: 'bad small'}, 'lost') : n.draining ? h('div', {class: 'muted small'}, 'draining') : null),
    h('td', {}, n.type),
    h('td', {}, labelChips(n.labels)),
    h('td', {class: 'wide'}, loadBar(n.running ?? n.taskCount ?? 0, n.capacity ?? 0)),
    h('td', {class: 'num'}, dash(n.cpuPercent, (v) => `${Number(v).toFixed(0)} %`)),
    h('td', {class: 'num'}, dash(n.memoryMb, (v) => `${Number(v).toFixed(0)} MB`)),
    h('td', {}, someOf(n.supportedTasks)),
    h('td', {}, (n.currentTasks || []).length ? h('a', {href: `#/tasks?node=${encodeURIComponent(n.id)}`}, `${n.currentTasks.length} task${n.currentTasks.length === 1 ? '' : 's'}`) : h('span', {class: 'muted'}, 'none')),
    h('td', {}, heartbeat(n.heartbeatAt)));
}

export function mount(root) {
  const tbody = h('tbody', {});
  const counts = h('p', {class: 'muted'});
  const error = h('p', {class: 'form-error', hidden: true});
  const page = h('div', {class: 'page nodes-page'},
    h('div', {class: 'page-head'}, h('h1', {}, 'Nodes'), counts),
    error,
    h('div', {class: 'table-wrap'}, h('table', {class: 'grid nodes'},
      h('thead', {}, h('tr', {}, ['Node', 'Status', 'Mode', 'Labels', 'Running / capacity', 'CPU', 'Memory', 'Classes', 'Tasks', 'Last heartbeat'].map((c) => h('th', {}, c)))),
      tbody)));
  root.append(page);

  const refresh = coalesce(async () => {
    try {
      const result = await api('/api/skalds');
      const items = result.items || [];
      error.hidden = true;
      const online = items.filter((n) => n.status === 'online').length;
      counts.textContent = `${online} online · ${items.length - online} offline`;
      replace(tbody, items.length ? items.map(row) : h('tr', {}, h('td', {colspan: 10}, empty('No node has joined yet.'))));
      page.dataset.loaded = 'true';
    } catch (err) {
      error.textContent = `Could not list nodes: ${err.message}`;
      error.hidden = false;
    }
  }, 300);
  refresh.now();
  // Lease expiry is judged by the controller and announced as node.offline; the slow poll
  // only covers a stream that is down.
  const timer = setInterval(refresh, 15_000);

  return {
    onEvent(event) {
      if (event.event.startsWith('node.') || event.event === 'refetch' || event.event === 'task.assigned' || event.event === 'task.status') refresh();
    },
    unmount() {
      refresh.stop();
      clearInterval(timer);
    },
  };
}
