// What an operator does to tasks: the action buttons a task's state allows, the "new task"
// form and the attachments editor (both generated from the class's JSON Schema).

import {ApiError, api, taskPath} from './api.js';
import {confirmAction, modal, toast} from './dialogs.js';
import {h, replace} from './dom.js';
import {LIVE_STATES, TERMINAL_STATES} from './format.js';
import {schemaForm} from './schema-form.js';

/** The actions each state allows (the transition table of skalds/core/lifecycle.py). */
const ALLOWED = {
  pause: new Set(['Created', 'Assigning', 'Running']),
  resume: new Set(['Paused']),
  cancel: LIVE_STATES,
  retry: TERMINAL_STATES,
  edit: LIVE_STATES,
  delete: TERMINAL_STATES,
};

/** The classes the cluster can run, with their attachment schemas: {className: schema}. */
export async function workerSchemas() {
  const list = await api('/api/workers');
  return Object.fromEntries((list || []).map((w) => [w.className, w.schema || {}]));
}

async function act(task, action, onDone) {
  if (action === 'cancel') {
    const ok = await confirmAction(`Cancel ${task.id}?`, 'Its worker is asked to stop, then terminated after the grace period. A cancelled task can be retried.', 'Cancel task', true);
    if (!ok) return;
  }
  if (action === 'delete') {
    const ok = await confirmAction(`Delete ${task.id}?`, 'The record of this ended task is removed; its id can be used again.', 'Delete', true);
    if (!ok) return;
  }
  try {
    const path = taskPath(task.id);
    const result = action === 'delete' ? await api(path, {method: 'DELETE'}) : await api(`${path}/${action}`, {method: 'POST'});
    const state = result && result.lifecycleStatus;
    toast(action === 'delete' ? `${task.id} deleted` : `${task.id}: ${action} — now ${state || 'sent'}`, 'ok');
    if (onDone) onDone(result, action);
  } catch (err) {
    toast(`${action} ${task.id}: ${err.message}`, 'error');
  }
}

/** The buttons for what the task's state allows. `compact` drops the rarely used ones. */
export function actionButtons(task, onDone, {compact = false} = {}) {
  const state = task.lifecycleStatus;
  const button = (action, label, cls = 'secondary') =>
    ALLOWED[action].has(state)
      ? h('button', {type: 'button', class: `${cls} small`, dataset: {action}, onclick: (e) => {
        e.stopPropagation();
        if (action === 'edit') editAttachments(task, onDone);
        else act(task, action, onDone);
      }}, label)
      : null;
  return h('div', {class: 'actions'},
    button('pause', 'Pause'),
    button('resume', 'Resume', 'primary'),
    button('edit', 'Edit'),
    button('retry', 'Retry', 'primary'),
    button('cancel', 'Cancel', 'danger'),
    compact ? null : button('delete', 'Delete', 'danger'));
}

/** Strip what the API puts before an attachment's own path. */
function attachmentPath(field) {
  return String(field).replace(/^body\./, '').replace(/^attachments\.?/, '');
}

function summary() {
  return h('div', {class: 'form-error', role: 'alert', hidden: true});
}

function showSummary(box, text, errors = []) {
  replace(box, h('strong', {}, text), errors.length ? h('ul', {}, errors.map((e) => h('li', {}, e.field ? `${e.field}: ${e.message}` : e.message))) : null);
  box.hidden = false;
}

const META_SCHEMA = {
  type: 'object',
  properties: {
    id: {type: 'string', description: 'Leave empty for a generated id. Letters, digits and _ . : -'},
    name: {type: 'string', description: 'A display name'},
    priority: {type: 'integer', minimum: 0, maximum: 10, default: 0},
  },
};
const META_FIELDS = new Set(['id', 'name', 'priority', 'description', 'className']);

/** The "new task" dialog; calls onCreated(task) after the API stored it. */
export async function createTask(onCreated) {
  let schemas;
  try {
    schemas = await workerSchemas();
  } catch (err) {
    toast(`worker classes: ${err.message}`, 'error');
    return;
  }
  const classes = Object.keys(schemas).sort();
  const classError = h('p', {class: 'field-error', role: 'alert', hidden: true});
  const select = h('select', {id: 'new-task-class', name: 'className', required: true},
    h('option', {value: ''}, classes.length ? '— choose a class —' : 'no worker classes known'),
    classes.map((c) => h('option', {value: c}, c)));
  const meta = schemaForm(META_SCHEMA, undefined, {mode: 'create'});
  const attachmentsBox = h('div', {class: 'attachments-form', dataset: {form: 'attachments'}}, h('p', {class: 'muted'}, 'Choose a class to see its attachments.'));
  const errorBox = summary();
  let attachments = null;

  select.addEventListener('change', () => {
    classError.hidden = true;
    const schema = schemas[select.value];
    attachments = schema ? schemaForm(schema, undefined, {mode: 'create'}) : null;
    replace(attachmentsBox, attachments ? attachments.el : h('p', {class: 'muted'}, 'Choose a class to see its attachments.'));
  });

  const submit = h('button', {type: 'submit', class: 'primary'}, 'Create task');
  const form = h('form', {class: 'dialog-body', novalidate: true, dataset: {form: 'create-task'}},
    h('div', {class: 'field', dataset: {path: 'className'}},
      h('label', {class: 'label', for: 'new-task-class'}, 'Worker class', h('span', {class: 'required'}, ' *')),
      h('div', {class: 'control'}, select), classError),
    h('div', {class: 'meta-form', dataset: {form: 'meta'}}, meta.el),
    h('h3', {}, 'Attachments'),
    attachmentsBox,
    errorBox,
    h('div', {class: 'dialog-actions'},
      h('button', {type: 'button', class: 'secondary', onclick: () => close()}, 'Cancel'),
      submit));
  const {close} = modal('New task', form, {wide: true});
  select.focus();

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    classError.hidden = true;
    if (!select.value) {
      classError.textContent = 'choose the worker class';
      classError.hidden = false;
      select.focus();
      return;
    }
    const m = meta.read();
    const a = attachments.read();
    meta.showErrors(m.errors);
    attachments.showErrors(a.errors);
    if (m.errors.length || a.errors.length) return;
    const body = {className: select.value, attachments: a.value, ...m.value};
    submit.disabled = true;
    try {
      const task = await api('/api/tasks', {method: 'POST', body});
      toast(`Task ${task.id} created`, 'ok');
      close();
      if (onCreated) onCreated(task);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      const ofAttachments = /attachments/i.test(err.message);
      const forAttachments = [];
      const forMeta = [];
      for (const e of err.fields) {
        const field = String(e.field);
        if (field.startsWith('attachments') || field.startsWith('body.attachments')) forAttachments.push({...e, field: attachmentPath(field)});
        else if (!ofAttachments && META_FIELDS.has(field.split('.')[0])) forMeta.push(e);
        else forAttachments.push(e);
      }
      const classProblem = forMeta.find((e) => e.field === 'className') || (err.status === 422 && /class/i.test(err.message) && !err.fields.length ? {message: err.message} : null);
      if (classProblem) {
        classError.textContent = classProblem.message;
        classError.hidden = false;
      }
      const left = [...meta.showErrors(forMeta.filter((e) => e.field !== 'className')), ...attachments.showErrors(forAttachments)];
      if (left.length || (!err.fields.length && !classProblem)) showSummary(errorBox, err.message, left);
    } finally {
      submit.disabled = false;
    }
  });
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The attachments editor of a live task; sends only the fields that changed (PATCH merges). */
export async function editAttachments(task, onDone) {
  let schemas = {};
  try {
    schemas = await workerSchemas();
  } catch (err) {
    toast(`worker classes: ${err.message}`, 'error');
  }
  const current = task.attachments && typeof task.attachments === 'object' ? task.attachments : {};
  const schema = schemas[task.className];
  // A class no node advertises: edit the attachments as one JSON object.
  const form = schemaForm(schema || {}, current, {mode: 'edit'});
  const errorBox = summary();
  const submit = h('button', {type: 'submit', class: 'primary'}, 'Send update');
  const body = h('form', {class: 'dialog-body', novalidate: true, dataset: {form: 'edit-attachments'}},
    h('p', {class: 'muted small'}, `${task.className} · desired version ${task.desiredVersion}, applied ${task.appliedVersion}. Changed fields are merged into the running task's attachments and handed to its update handler.`),
    h('div', {class: 'attachments-form', dataset: {form: 'attachments'}}, form.el),
    errorBox,
    h('div', {class: 'dialog-actions'},
      h('button', {type: 'button', class: 'secondary', onclick: () => close()}, 'Cancel'),
      submit));
  const {close} = modal(`Attachments of ${task.id}`, body, {wide: true});

  body.addEventListener('submit', async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    const got = form.read();
    form.showErrors(got.errors);
    if (got.errors.length) return;
    const changes = {};
    for (const [key, value] of Object.entries(got.value || {})) if (!same(value, current[key])) changes[key] = value;
    if (!Object.keys(changes).length) {
      showSummary(errorBox, 'Nothing changed.');
      return;
    }
    submit.disabled = true;
    try {
      const updated = await api(`${taskPath(task.id)}/attachments`, {method: 'PATCH', body: {attachments: changes}});
      toast(`${task.id}: update sent (desired version ${updated.desiredVersion})`, 'ok');
      close();
      if (onDone) onDone(updated, 'edit');
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      const left = form.showErrors(err.fields.map((e) => ({...e, field: attachmentPath(e.field)})));
      if (left.length || !err.fields.length) showSummary(errorBox, err.message, left);
    } finally {
      submit.disabled = false;
    }
  });
}
