// One task: its state and actions, progress with the worker's message, heartbeat age,
// desired vs applied attachments version, error and traceback, state timeline, attempts,
// and the worker's log following live. History and logs come from endpoints a controller
// may not have yet: then their panels say so instead of failing.

import {actionButtons} from '../actions.js';
import {ApiError, api, apiOptional, taskPath} from '../api.js';
import {coalesce, empty, h, panel, replace} from '../dom.js';
import {absolute, ago, clock, dash, duration, progressBar, stateBadge} from '../format.js';
import {EventStream} from '../sse.js';

const MAX_LOG_LINES = 2000;

function facts(pairs) {
  return h('dl', {class: 'facts'}, pairs.filter(Boolean).map(([term, value, key]) => [h('dt', {}, term), h('dd', {dataset: {fact: key || term.toLowerCase()}}, value)]));
}

function versionFact(t) {
  const applied = t.appliedVersion >= t.desiredVersion;
  return h('span', {class: applied ? 'ok-text' : 'pending'},
    `desired ${t.desiredVersion} · applied ${t.appliedVersion}`,
    h('span', {class: 'muted'}, applied ? ' — the worker runs the latest attachments' : ' — waiting for the worker’s update handler'));
}

function heartbeatFact(t) {
  if (!t.heartbeatAt) return h('span', {class: 'muted'}, t.lifecycleStatus === 'Running' ? 'no beat yet' : '–');
  const el = ago(t.heartbeatAt);
  if (t.lifecycleStatus === 'Running' || t.lifecycleStatus === 'Paused') el.dataset.staleAfter = '5000';
  return el;
}

function errorPanel(t) {
  if (!t.error && !t.exception && !t.errorDetail) return null;
  const detail = t.errorDetail || {};
  const trace = detail.traceback || (t.exception && t.exception !== t.error ? t.exception : null);
  return panel('Error', h('div', {class: 'error-box'},
    h('p', {class: 'error-text', dataset: {fact: 'error'}}, t.error || detail.message || 'failed'),
    detail.exitCode !== null && detail.exitCode !== undefined ? h('p', {class: 'muted small'}, `exit code ${detail.exitCode}`) : null,
    trace ? h('details', {open: true}, h('summary', {}, 'Traceback'), h('pre', {class: 'traceback'}, trace)) : null));
}

function attemptsPanel(t) {
  const items = t.attempts || [];
  const body = items.length
    ? h('table', {class: 'grid compact'},
      h('thead', {}, h('tr', {}, ['#', 'Epoch', 'Node', 'Started', 'Ended', 'Ran', 'Outcome', 'Error'].map((c) => h('th', {}, c)))),
      h('tbody', {}, [...items].reverse().map((a) => h('tr', {},
        h('td', {}, String(a.attempt)), h('td', {}, String(a.epoch)), h('td', {}, dash(a.node)),
        h('td', {title: absolute(a.startedAt)}, a.startedAt ? clock(a.startedAt) : '–'),
        h('td', {title: absolute(a.endedAt)}, clock(a.endedAt)),
        h('td', {}, a.startedAt ? duration(a.endedAt - a.startedAt) : '–'),
        h('td', {}, h('span', {class: `outcome outcome-${a.outcome}`}, a.outcome.replace('_', ' '))),
        h('td', {class: 'error-text'}, dash(a.error))))))
    : empty('No run has ended yet.');
  return panel(`Attempts (${items.length} ended · ${t.attempt} retr${t.attempt === 1 ? 'y' : 'ies'} used)`, body);
}

function timeline(history) {
  if (history === null) return empty('This controller does not keep a state history yet.');
  const items = history.items || [];
  if (!items.length) return empty('No recorded transition yet.');
  return h('ol', {class: 'timeline'}, items.map((e) => h('li', {},
    h('time', {title: absolute(e.at)}, clock(e.at)),
    e.status ? stateBadge(e.status) : null,
    h('span', {class: 'what'}, e.action || '', e.actor ? h('span', {class: 'muted'}, ` by ${e.actor}`) : null),
    h('span', {class: 'muted small'}, [e.epoch !== undefined && e.epoch !== null ? `epoch ${e.epoch}` : null, e.attempt ? `attempt ${e.attempt}` : null].filter(Boolean).join(' · ')),
    e.reason ? h('div', {class: 'reason'}, e.reason) : null)));
}

/** The log panel: the tail, then every new line as the worker writes it. */
function logView(id) {
  const lines = h('div', {class: 'log-lines', role: 'log', 'aria-live': 'off', tabindex: '0'});
  const status = h('span', {class: 'muted small log-status'}, 'loading…');
  const follow = h('input', {type: 'checkbox', checked: true, 'aria-label': 'Follow the log'});
  const seen = new Set();
  let stream = null;
  let count = 0;

  function key(line) {
    return `${line.at}|${line.stream}|${line.epoch}|${line.text}`;
  }

  function add(batch) {
    const atBottom = lines.scrollHeight - lines.scrollTop - lines.clientHeight < 40;
    const frag = document.createDocumentFragment();
    for (const line of batch) {
      const k = key(line);
      if (seen.has(k)) continue;
      seen.add(k);
      count += 1;
      const level = String(line.level || (line.stream === 'stderr' ? 'error' : 'info')).toLowerCase();
      frag.append(h('div', {class: `log-line level-${level} stream-${line.stream || 'log'}`},
        h('time', {title: absolute(line.at)}, clock(line.at)),
        line.level ? h('span', {class: 'level'}, String(line.level).toUpperCase()) : null,
        line.node || line.epoch !== undefined ? h('span', {class: 'muted'}, [line.node, line.epoch !== undefined ? `e${line.epoch}` : null].filter(Boolean).join(' ')) : null,
        h('span', {class: 'text'}, line.text ?? '')));
    }
    if (lines.querySelector('.empty')) lines.replaceChildren();
    lines.append(frag);
    while (lines.childElementCount > MAX_LOG_LINES) lines.firstElementChild.remove();
    if (seen.size > MAX_LOG_LINES * 4) seen.clear();
    if (follow.checked && atBottom) lines.scrollTop = lines.scrollHeight;
  }

  async function start() {
    let tail;
    try {
      tail = await apiOptional(`${taskPath(id)}/logs`, {query: {tail: 200}});
    } catch (err) {
      status.textContent = `could not read the log: ${err.message}`;
      return;
    }
    if (tail === null) {
      replace(lines, empty('This controller does not collect worker logs yet.'));
      status.textContent = 'not available';
      lines.dataset.available = 'false';
      follow.parentElement.hidden = true;
      return;
    }
    lines.dataset.available = 'true';
    if (!(tail.lines || []).length) replace(lines, empty('No log line yet.'));
    add(tail.lines || []);
    lines.scrollTop = lines.scrollHeight;
    status.textContent = `${count} lines`;
    // Follow from the tail's last line, so nothing is sent twice (Last-Event-ID takes over
    // once the stream has delivered a line).
    const after = tail.cursor ? `&after=${encodeURIComponent(tail.cursor)}` : '';
    stream = new EventStream(`${taskPath(id)}/logs?follow=true${after}`, {
      onEvent(event) {
        if (event.event !== 'log' && event.event !== 'message') return;
        const batch = Array.isArray(event.data) ? event.data : [event.data];
        add(batch.filter((l) => l && typeof l === 'object'));
        status.textContent = `${count} lines · following`;
      },
      onState(state, detail) {
        if (state === 'open') status.textContent = `${count} lines · following`;
        else if (state === 'retrying') status.textContent = `${count} lines · reconnecting`;
        else if (state === 'unavailable') status.textContent = `${count} lines · live log ${detail || 'not available'}`;
      },
    }).start();
  }

  follow.addEventListener('change', () => {
    if (follow.checked) lines.scrollTop = lines.scrollHeight;
  });
  const el = panel('Worker log', h('div', {class: 'log', dataset: {log: id}}, lines),
    h('div', {class: 'log-tools'}, status, h('label', {class: 'small'}, follow, ' follow')));
  el.classList.add('log-panel');
  return {el, start, stop: () => stream && stream.stop()};
}

export function mount(root, {id}) {
  const head = h('div', {class: 'page-head'});
  const nowSlot = h('div', {class: 'slot'});
  const attachSlot = h('div', {class: 'slot'});
  const errorSlot = h('div', {class: 'slot'});
  const timelineBody = h('div', {}, h('p', {class: 'muted'}, 'loading…'));
  const attemptsSlot = h('div', {class: 'slot'});
  const logs = logView(id);
  const problem = h('p', {class: 'form-error', hidden: true});
  const page = h('div', {class: 'page task-page', dataset: {task: id}},
    h('nav', {class: 'crumbs'}, h('a', {href: '#/tasks'}, 'Tasks'), ' › '),
    head, problem,
    h('div', {class: 'columns'}, h('div', {}, nowSlot, attachSlot), h('div', {}, errorSlot, panel('State timeline', timelineBody))),
    attemptsSlot,
    logs.el);
  root.append(page);
  let task = null;
  let gone = false;

  function renderNow(t) {
    replace(nowSlot, panel('Now', h('div', {},
      h('div', {class: 'progress-line', dataset: {fact: 'progress'}}, progressBar(t.progress, t.message)),
      facts([
        ['Class', t.className],
        ['Node', t.executor ? h('a', {href: `#/tasks?node=${encodeURIComponent(t.executor)}`}, t.executor) : h('span', {class: 'muted'}, 'unassigned'), 'node'],
        ['Heartbeat', heartbeatFact(t), 'heartbeat'],
        ['Attachments', versionFact(t), 'version'],
        ['Epoch', String(t.epoch)],
        ['Attempt', `${t.attempt} retr${t.attempt === 1 ? 'y' : 'ies'} used`, 'attempt'],
        t.pendingReason ? ['Waiting', t.pendingReason, 'pending'] : null,
        t.retryAt && t.retryAt > Date.now() ? ['Next try', ago(t.retryAt), 'retry'] : null,
        t.pinnedNode ? ['Pinned to', t.pinnedNode, 'pinned'] : null,
        ['Started', ago(t.startedAt), 'started'],
        ['Created', ago(t.createDateTime), 'created'],
        ['Updated', ago(t.updateDateTime), 'updated'],
        ['Priority', String(t.priority ?? 0)],
        ['Source', t.source || 'api'],
      ]))));
  }

  function render(t) {
    task = t;
    replace(head,
      h('h1', {}, t.id, ' ', stateBadge(t.lifecycleStatus)),
      actionButtons(t, () => refresh.now()));
    page.dataset.state = t.lifecycleStatus;
    if (t.name || t.description) head.append(h('p', {class: 'muted full'}, [t.name, t.description].filter(Boolean).join(' — ')));
    renderNow(t);
    replace(attachSlot, panel('Attachments', h('pre', {class: 'json', dataset: {fact: 'attachments'}}, JSON.stringify(t.attachments ?? {}, null, 2))));
    replace(errorSlot, errorPanel(t));
    replace(attemptsSlot, attemptsPanel(t));
  }

  const refresh = coalesce(async () => {
    try {
      const [t, history] = await Promise.all([api(taskPath(id)), apiOptional(`${taskPath(id)}/history`).catch(() => null)]);
      problem.hidden = true;
      render(t);
      replace(timelineBody, timeline(history));
      page.dataset.loaded = 'true';
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        gone = true;
        replace(head, h('h1', {}, id));
        problem.textContent = `There is no task ${id} (it may have been deleted).`;
      } else {
        problem.textContent = `Could not read the task: ${err.message}`;
      }
      problem.hidden = false;
    }
  }, 250);
  refresh.now().then(() => {
    if (!gone) logs.start();
  });

  return {
    onEvent(event) {
      const data = event.data || {};
      if (event.event === 'refetch') return refresh();
      if (data.taskId !== id) return;
      if (event.event === 'task.progress' && task) {
        task.progress = data.progress;
        task.message = data.message;
        task.heartbeatAt = data.heartbeatAt;
        renderNow(task);
        return;
      }
      refresh();
    },
    unmount() {
      refresh.stop();
      logs.stop();
    },
  };
}
