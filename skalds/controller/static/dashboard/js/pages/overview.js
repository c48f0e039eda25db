// Overview: tasks by state, nodes online and lost with their load, tasks waiting for a node
// (and why, when the task says), recent failures. Refetched (coalesced) on every event that
// can change a count; progress beats change none, so they are ignored here.

import {api} from '../api.js';
import {coalesce, empty, h, panel, replace} from '../dom.js';
import {STATES, ago, dash, loadBar, nodeBadge, stateBadge} from '../format.js';

const COUNT_FIELDS = {
  Created: 'createdTasks',
  Assigning: 'assigningTasks',
  Running: 'runningTasks',
  Paused: 'pausedTasks',
  Finished: 'finishedTasks',
  Failed: 'failedTasks',
  Cancelled: 'cancelledTasks',
};

function stateCards(summary) {
  const total = h('a', {class: 'card total', href: '#/tasks', dataset: {count: 'total'}},
    h('span', {class: 'card-label'}, 'All tasks'), h('span', {class: 'card-value'}, String(summary.totalTasks ?? 0)));
  return h('div', {class: 'cards'}, total, STATES.map((state) => {
    const n = summary[COUNT_FIELDS[state]] ?? 0;
    return h('a', {class: `card state-card state-${state.toLowerCase()}${n ? '' : ' zero'}`, href: `#/tasks?state=${state}`, dataset: {count: state}},
      h('span', {class: 'card-label'}, state), h('span', {class: 'card-value'}, String(n)));
  }));
}

function nodesPanel(nodes) {
  const online = nodes.filter((n) => n.status === 'online');
  const lost = nodes.length - online.length;
  const head = h('div', {class: 'node-summary'},
    h('span', {class: 'big ok', dataset: {count: 'nodes-online'}}, String(online.length)), ' online',
    h('span', {class: `big ${lost ? 'bad' : 'muted'}`, dataset: {count: 'nodes-lost'}}, String(lost)), ' lost');
  const rows = nodes.map((n) => h('tr', {class: n.status === 'online' ? '' : 'offline', dataset: {node: n.id}},
    h('td', {}, h('a', {href: '#/nodes'}, n.id)),
    h('td', {}, nodeBadge(n.status)),
    h('td', {}, n.type),
    h('td', {class: 'wide'}, loadBar(n.running ?? n.taskCount ?? 0, n.capacity ?? 0)),
    h('td', {}, ago(n.lastSeen || n.heartbeatAt))));
  const table = nodes.length
    ? h('table', {class: 'grid compact'}, h('thead', {}, h('tr', {}, h('th', {}, 'Node'), h('th', {}, 'Status'), h('th', {}, 'Mode'), h('th', {}, 'Running / capacity'), h('th', {}, 'Seen'))), h('tbody', {}, rows))
    : empty('No node has joined yet. Start one with python -m skalds +mode=node.');
  return panel('Nodes', h('div', {}, head, table));
}

function waitingReason(task) {
  if (task.pendingReason) return task.pendingReason;
  if (task.retryAt && task.retryAt > Date.now()) return h('span', {}, 'retry backoff, next try ', ago(task.retryAt));
  if (task.lifecycleStatus === 'Assigning') return `placed on ${task.executor || '?'}, starting`;
  if (task.pinnedNode) return `waits for its node ${task.pinnedNode}`;
  return h('span', {class: 'muted'}, '–');
}

function waitingPanel(page) {
  const body = page.items.length
    ? h('table', {class: 'grid compact'},
      h('thead', {}, h('tr', {}, h('th', {}, 'Task'), h('th', {}, 'Class'), h('th', {}, 'State'), h('th', {}, 'Waiting since'), h('th', {}, 'Why'))),
      h('tbody', {}, page.items.map((t) => h('tr', {dataset: {task: t.id}},
        h('td', {}, h('a', {href: `#/tasks/${encodeURIComponent(t.id)}`}, t.id)),
        h('td', {}, t.className),
        h('td', {}, stateBadge(t.lifecycleStatus)),
        h('td', {}, ago(t.updateDateTime || t.createDateTime)),
        h('td', {class: 'reason'}, waitingReason(t))))))
    : empty('No task is waiting for a node.');
  const more = page.total > page.items.length ? h('a', {href: '#/tasks?state=Created', class: 'small'}, `all ${page.total}`) : null;
  return panel(`Waiting for a node (${page.total})`, body, more);
}

function failuresPanel(page) {
  const body = page.items.length
    ? h('table', {class: 'grid compact'},
      h('thead', {}, h('tr', {}, h('th', {}, 'Task'), h('th', {}, 'Class'), h('th', {}, 'Error'), h('th', {}, 'Node'), h('th', {}, 'When'))),
      h('tbody', {}, page.items.map((t) => h('tr', {dataset: {task: t.id}},
        h('td', {}, h('a', {href: `#/tasks/${encodeURIComponent(t.id)}`}, t.id)),
        h('td', {}, t.className),
        h('td', {class: 'error-text', title: t.error || ''}, dash(t.error)),
        h('td', {}, dash(t.executor)),
        h('td', {}, ago(t.updateDateTime))))))
    : empty('No failed task. ');
  const more = page.total > page.items.length ? h('a', {href: '#/tasks?state=Failed', class: 'small'}, `all ${page.total}`) : null;
  return panel(`Recent failures (${page.total})`, body, more);
}

export function mount(root) {
  const cards = h('div', {class: 'slot', dataset: {slot: 'cards'}});
  const nodesSlot = h('div', {class: 'slot'});
  const waitingSlot = h('div', {class: 'slot'});
  const failuresSlot = h('div', {class: 'slot'});
  const error = h('p', {class: 'form-error', hidden: true});
  root.append(h('div', {class: 'page overview'},
    h('h1', {}, 'Overview'),
    error,
    cards,
    h('div', {class: 'columns'}, nodesSlot, waitingSlot),
    failuresSlot));

  const refresh = coalesce(async () => {
    try {
      const [summary, nodes, waiting, failed] = await Promise.all([
        api('/api/system/dashboard/summary'),
        api('/api/skalds'),
        api('/api/tasks', {query: {lifecycleStatus: ['Created', 'Assigning'], pageSize: 8, order: 'oldest'}}),
        api('/api/tasks', {query: {lifecycleStatus: 'Failed', pageSize: 6, order: 'newest'}}),
      ]);
      error.hidden = true;
      replace(cards, stateCards(summary));
      replace(nodesSlot, nodesPanel(nodes.items || []));
      replace(waitingSlot, waitingPanel(waiting));
      replace(failuresSlot, failuresPanel(failed));
      root.querySelector('.overview').dataset.loaded = 'true';
    } catch (err) {
      error.textContent = `Could not read the controller: ${err.message}`;
      error.hidden = false;
    }
  }, 300);
  refresh.now();
  // Waiting reasons and backoffs change without an event; a slow poll keeps them honest.
  const timer = setInterval(refresh, 10_000);

  return {
    onEvent(event) {
      if (event.event !== 'task.progress') refresh();
    },
    unmount() {
      refresh.stop();
      clearInterval(timer);
    },
  };
}
