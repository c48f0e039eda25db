// Config: every worker pool file a process of the cluster watches, with the result of its
// last reload (applied, or why the edit was rejected), and the controller's own settings.
// Reloads are not on the event stream, so this page polls while it is open.

import {api} from '../api.js';
import {coalesce, empty, h, panel, replace} from '../dom.js';
import {ago, dash} from '../format.js';

function applied(result) {
  const a = (result && result.applied) || {};
  const parts = ['created', 'updated', 'replaced', 'cancelled'].filter((k) => (a[k] || []).length).map((k) => `${k}: ${a[k].join(', ')}`);
  return parts.length ? parts.join(' · ') : 'no task changed';
}

function filesPanel(config) {
  const files = config.files || [];
  const body = files.length
    ? h('table', {class: 'grid'},
      h('thead', {}, h('tr', {}, ['Node', 'File', 'Last reload', 'When', 'Problem'].map((c) => h('th', {}, c)))),
      h('tbody', {}, files.map((f) => h('tr', {class: f.ok ? '' : 'rejected', dataset: {file: f.path, node: f.node}},
        h('td', {}, f.node),
        h('td', {class: 'path'}, f.path),
        h('td', {}, h('span', {class: `badge ${f.ok ? 'ok' : 'bad'}`}, f.ok ? 'applied' : 'rejected')),
        h('td', {}, ago(f.at)),
        h('td', {}, f.error ? h('pre', {class: 'error-text'}, f.error) : h('span', {class: 'muted'}, '–'))))))
    : empty('No process watches a worker pool file.');
  return panel('Watched worker pool files', body);
}

function lastPanel(config) {
  const last = config.lastReload;
  if (!last) return panel('This controller’s last reload', empty('No reload yet (or this controller watches no file).'));
  return panel('This controller’s last reload', h('dl', {class: 'facts'},
    h('dt', {}, 'Result'), h('dd', {}, h('span', {class: `badge ${last.ok ? 'ok' : 'bad'}`}, last.ok ? 'applied' : 'rejected')),
    h('dt', {}, 'When'), h('dd', {}, ago(last.at)),
    h('dt', {}, 'Took'), h('dd', {}, last.elapsedMs !== undefined ? `${Number(last.elapsedMs).toFixed(1)} ms` : '–'),
    h('dt', {}, 'Files'), h('dd', {}, (last.files || []).join(', ') || '–'),
    h('dt', {}, 'Changes'), h('dd', {}, last.ok ? applied(last) : '–'),
    last.error ? [h('dt', {}, 'Problem'), h('dd', {}, h('pre', {class: 'error-text'}, typeof last.error === 'string' ? last.error : JSON.stringify(last.error, null, 2)))] : null));
}

function settingsPanel(config) {
  return panel('Controller', h('dl', {class: 'facts'},
    h('dt', {}, 'Run mode'), h('dd', {}, dash(config.runMode)),
    h('dt', {}, 'Backend'), h('dd', {}, dash(config.backend)),
    h('dt', {}, 'Listens on'), h('dd', {}, `${config.host}:${config.port}`),
    h('dt', {}, 'Dispatch'), h('dd', {}, dash(config.dispatcher && config.dispatcher.strategy)),
    h('dt', {}, 'Pool source'), h('dd', {}, dash(config.source)),
    h('dt', {}, 'Log level'), h('dd', {}, dash(config.logLevel))));
}

export function mount(root) {
  const files = h('div', {class: 'slot'});
  const last = h('div', {class: 'slot'});
  const settings = h('div', {class: 'slot'});
  const error = h('p', {class: 'form-error', hidden: true});
  const page = h('div', {class: 'page config-page'}, h('h1', {}, 'Config'), error, files, h('div', {class: 'columns'}, last, settings));
  root.append(page);

  const refresh = coalesce(async () => {
    try {
      const config = await api('/api/system/config');
      error.hidden = true;
      replace(files, filesPanel(config));
      replace(last, lastPanel(config));
      replace(settings, settingsPanel(config));
      page.dataset.loaded = 'true';
    } catch (err) {
      error.textContent = `Could not read the configuration: ${err.message}`;
      error.hidden = false;
    }
  }, 300);
  refresh.now();
  const timer = setInterval(refresh, 3000);
  return {
    onEvent(event) {
      if (event.event === 'refetch' || event.event === 'node.online' || event.event === 'node.offline') refresh();
    },
    unmount() {
      refresh.stop();
      clearInterval(timer);
    },
  };
}
