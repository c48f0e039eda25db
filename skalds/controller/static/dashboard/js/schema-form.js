// Forms generated from a worker class's JSON Schema (what GET /api/workers gives, as pydantic
// writes it): strings, numbers, integers, booleans, enums, arrays, nested objects, $ref into
// $defs, Optional (anyOf with null), defaults and required. Anything else is edited as JSON.
//
// The form checks only what a browser must (a required field left empty, a number that is not
// one, JSON that does not parse); ranges, patterns and types are the model's to judge, and its
// 422 answer is shown field by field with showErrors().

import {h} from './dom.js';

let uid = 0;
const nextId = () => `f${++uid}`;

/** The schema with $ref, single-item allOf and Optional resolved; adds `nullable`. */
export function resolve(schema, root) {
  let s = schema || {};
  for (let depth = 0; depth < 20; depth++) {
    if (s.$ref) {
      const target = lookup(root, s.$ref);
      const {$ref, ...rest} = s;
      s = {...target, ...rest};
      continue;
    }
    if (Array.isArray(s.allOf) && s.allOf.length === 1) {
      const {allOf, ...rest} = s;
      s = {...allOf[0], ...rest};
      continue;
    }
    const variants = s.anyOf || s.oneOf;
    if (Array.isArray(variants)) {
      const real = variants.filter((v) => v.type !== 'null');
      if (real.length === 1) {
        const {anyOf, oneOf, ...rest} = s;
        s = {...real[0], ...rest, nullable: real.length < variants.length || s.nullable};
        continue;
      }
    }
    if (Array.isArray(s.type)) {
      const real = s.type.filter((t) => t !== 'null');
      if (real.length === 1) s = {...s, type: real[0], nullable: real.length < s.type.length};
    }
    break;
  }
  return s;
}

function lookup(root, ref) {
  if (!ref.startsWith('#/')) return {};
  let node = root;
  for (const part of ref.slice(2).split('/')) {
    node = node && node[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return node || {};
}

function kindOf(s) {
  if (Array.isArray(s.enum)) return 'enum';
  if ('const' in s) return 'const';
  if (s.type === 'object' || (!s.type && s.properties)) return s.properties ? 'object' : 'json';
  if (s.type === 'array') return 'array';
  if (['string', 'integer', 'number', 'boolean'].includes(s.type)) return s.type;
  return 'json';
}

/**
 * Build the form. `value` prefills it (falling back to the schema's defaults);
 * mode 'edit' sends null for an Optional field the operator cleared.
 * Returns {el, read(), showErrors(errors), clearErrors()}:
 *   read() -> {value, errors:[{field, message}]} (value is the object to send);
 *   showErrors(errors) puts each message next to its field and returns those it could not place.
 */
export function schemaForm(schema, value, {mode = 'create', prefix = ''} = {}) {
  const fields = new Map();
  const ctx = {root: schema, fields, mode};
  const rootSchema = resolve(schema, schema);
  let editor;
  if (kindOf(rootSchema) === 'object') {
    editor = objectEditor(ctx, rootSchema, value, prefix, {top: true});
  } else {
    editor = field(ctx, prefix || '(attachments)', rootSchema, value, true, 'attachments (JSON)');
  }
  const el = h('div', {class: 'schema-form'}, editor.el);

  function clearErrors() {
    for (const entry of fields.values()) {
      entry.error.textContent = '';
      entry.error.hidden = true;
      entry.wrap.classList.remove('invalid');
      if (entry.input) entry.input.removeAttribute('aria-invalid');
    }
  }

  function place(path, message) {
    let parts = path.split('.').filter(Boolean);
    while (parts.length) {
      const key = parts.join('.');
      if (fields.has(key)) {
        const entry = fields.get(key);
        const extra = key === path ? '' : `${path.slice(key.length + 1)}: `;
        entry.error.textContent = entry.error.textContent ? `${entry.error.textContent}; ${extra}${message}` : `${extra}${message}`;
        entry.error.hidden = false;
        entry.wrap.classList.add('invalid');
        if (entry.input) entry.input.setAttribute('aria-invalid', 'true');
        return entry;
      }
      parts = parts.slice(0, -1);
    }
    return null;
  }

  function showErrors(errors) {
    clearErrors();
    const unplaced = [];
    let first = null;
    for (const e of errors) {
      const entry = place(String(e.field || ''), e.message || 'invalid');
      if (!entry) unplaced.push(e);
      else if (!first) first = entry;
    }
    if (first && first.input) first.input.focus();
    return unplaced;
  }

  function read() {
    const errors = [];
    const got = editor.read(errors);
    return {value: got.set ? got.value : {}, errors};
  }

  return {el, read, showErrors, clearErrors, has: (path) => fields.has(path)};
}

function join(path, key) {
  return path ? `${path}.${key}` : String(key);
}

/** A labelled field: the editor for `s` at `path`, with its hint and its error line. */
function field(ctx, path, s, value, required, label, {item = false} = {}) {
  const inner = editorFor(ctx, s, value, path);
  const id = inner.input ? inner.input.id || (inner.input.id = nextId()) : null;
  const hints = [];
  if (s.description) hints.push(s.description);
  const range = rangeText(s);
  if (range) hints.push(range);
  const error = h('p', {class: 'field-error', role: 'alert', hidden: true});
  const kind = kindOf(s);
  const compound = kind === 'object' || kind === 'array';
  const title = h(compound ? 'span' : 'label', {class: 'label', for: compound ? null : id},
    label, required && !item ? h('span', {class: 'required', title: 'required'}, ' *') : null);
  const wrap = h('div', {class: `field field-${kind}`, dataset: {path}},
    kind === 'boolean' ? null : title,
    h('div', {class: 'control'}, inner.el, kind === 'boolean' ? title : null),
    hints.length ? h('p', {class: 'hint'}, hints.join(' · ')) : null,
    error);
  ctx.fields.set(path, {wrap, error, input: inner.input});
  if (inner.input) {
    // A message about a value goes once the value is changed.
    inner.input.addEventListener('input', () => {
      error.hidden = true;
      error.textContent = '';
      wrap.classList.remove('invalid');
      inner.input.removeAttribute('aria-invalid');
    });
  }
  return {
    el: wrap,
    read(errors) {
      const got = inner.read(errors);
      if (!got.set && required && !got.invalid) errors.push({field: path, message: 'required'});
      return got;
    },
  };
}

function rangeText(s) {
  const lo = s.minimum ?? (s.exclusiveMinimum !== undefined ? `>${s.exclusiveMinimum}` : undefined);
  const hi = s.maximum ?? (s.exclusiveMaximum !== undefined ? `<${s.exclusiveMaximum}` : undefined);
  if (lo !== undefined && hi !== undefined) return `${lo} … ${hi}`;
  if (lo !== undefined) return `≥ ${lo}`.replace('≥ >', '> ');
  if (hi !== undefined) return `≤ ${hi}`.replace('≤ <', '< ');
  if (s.minLength || s.maxLength) return `${s.minLength || 0} … ${s.maxLength || '∞'} characters`;
  return '';
}

function initial(s, value) {
  return value !== undefined ? value : s.default;
}

function editorFor(ctx, s, value, path) {
  switch (kindOf(s)) {
    case 'string':
      return stringEditor(ctx, s, initial(s, value));
    case 'integer':
    case 'number':
      return numberEditor(ctx, s, initial(s, value));
    case 'boolean':
      return booleanEditor(s, initial(s, value));
    case 'enum':
      return enumEditor(ctx, s, initial(s, value));
    case 'const':
      return constEditor(s);
    case 'array':
      return arrayEditor(ctx, s, initial(s, value), path);
    case 'object':
      return objectEditor(ctx, s, initial(s, value), path, {});
    default:
      return jsonEditor(ctx, s, initial(s, value));
  }
}

/** Empty input: leave the key out, or (editing an Optional value that was set) send null. */
function emptyValue(ctx, s, hadValue) {
  if (s.nullable && ctx.mode === 'edit' && hadValue) return {value: null, set: true};
  return {value: undefined, set: false};
}

function stringEditor(ctx, s, value) {
  const long = (s.maxLength || 0) > 300 || s.format === 'textarea';
  const props = {
    type: s.format === 'password' || s.writeOnly ? 'password' : 'text',
    value: value === null || value === undefined ? '' : String(value),
    placeholder: s.examples && s.examples.length ? String(s.examples[0]) : null,
    autocomplete: 'off',
    spellcheck: 'false',
  };
  const input = long ? h('textarea', {rows: 3, ...props, type: null}) : h('input', props);
  const had = value !== null && value !== undefined;
  return {
    el: input,
    input,
    read() {
      // An empty text box is "not given", not "" (the API's Optional fields take null).
      if (input.value === '') return emptyValue(ctx, s, had);
      return {value: input.value, set: true};
    },
  };
}

function numberEditor(ctx, s, value) {
  const integer = s.type === 'integer';
  const input = h('input', {
    type: 'number',
    step: integer ? '1' : 'any',
    inputmode: integer ? 'numeric' : 'decimal',
    value: value === null || value === undefined ? '' : String(value),
  });
  const had = value !== null && value !== undefined;
  return {
    el: input,
    input,
    read(errors) {
      if (input.validity.badInput) {
        errors.push({field: pathOf(ctx, input), message: integer ? 'not a whole number' : 'not a number'});
        return {value: undefined, set: false, invalid: true};
      }
      if (input.value === '') return emptyValue(ctx, s, had);
      return {value: Number(input.value), set: true};
    },
  };
}

function pathOf(ctx, input) {
  for (const [path, entry] of ctx.fields) if (entry.input === input) return path;
  return '';
}

function booleanEditor(s, value) {
  const input = h('input', {type: 'checkbox', checked: Boolean(value)});
  return {el: input, input, read: () => ({value: input.checked, set: true})};
}

function enumEditor(ctx, s, value) {
  const options = s.enum.map((v, i) => h('option', {value: String(i), selected: v === value}, v === null ? '(none)' : String(v)));
  const blank = value === undefined || !s.enum.includes(value);
  const select = h('select', {}, h('option', {value: '', selected: blank}, '—'), options);
  const had = value !== null && value !== undefined;
  return {
    el: select,
    input: select,
    read() {
      if (select.value === '') return emptyValue(ctx, s, had);
      return {value: s.enum[Number(select.value)], set: true};
    },
  };
}

function constEditor(s) {
  return {el: h('code', {}, JSON.stringify(s.const)), input: null, read: () => ({value: s.const, set: true})};
}

function jsonEditor(ctx, s, value) {
  const text = value === undefined ? '' : JSON.stringify(value, null, 2);
  const input = h('textarea', {class: 'json', rows: Math.min(12, Math.max(2, text.split('\n').length)), spellcheck: 'false', value: text});
  const had = value !== null && value !== undefined;
  return {
    el: input,
    input,
    read(errors) {
      if (input.value.trim() === '') return emptyValue(ctx, s, had);
      try {
        return {value: JSON.parse(input.value), set: true};
      } catch (err) {
        errors.push({field: pathOf(ctx, input), message: `not valid JSON: ${err.message}`});
        return {value: undefined, set: false, invalid: true};
      }
    },
  };
}

function objectEditor(ctx, s, value, path, {top = false}) {
  const required = new Set(s.required || []);
  const current = value && typeof value === 'object' && !Array.isArray(value) ? value : {};
  const children = Object.entries(s.properties || {}).map(([key, sub]) => {
    const resolved = resolve(sub, ctx.root);
    return [key, field(ctx, join(path, key), resolved, current[key], required.has(key), key)];
  });
  const el = top
    ? h('div', {class: 'object top'}, children.map(([, f]) => f.el))
    : h('fieldset', {class: 'object'}, children.map(([, f]) => f.el));
  if (!children.length) el.append(h('p', {class: 'muted small'}, 'This class takes no attachments.'));
  return {
    el,
    input: null,
    read(errors) {
      const out = {};
      let any = false;
      const inner = [];
      for (const [key, f] of children) {
        const got = f.read(inner);
        if (got.set) {
          out[key] = got.value;
          any = true;
        }
      }
      // An optional nested object left wholly empty is "not given": its required fields
      // are no error then.
      if (!any && !top && value === undefined) {
        const others = inner.filter((e) => e.message !== 'required');
        errors.push(...others);
        return {value: undefined, set: false};
      }
      errors.push(...inner);
      return {value: out, set: true};
    },
  };
}

function arrayEditor(ctx, s, value, path) {
  const itemSchema = resolve(s.items || {}, ctx.root);
  const list = h('ol', {class: 'array-items'});
  let items = [];
  const add = h('button', {type: 'button', class: 'secondary small', onclick: () => {
    render([...snapshot(), undefined]);
    const last = list.lastElementChild;
    const input = last && last.querySelector('input, select, textarea');
    if (input) input.focus();
  }}, '+ Add');

  function snapshot() {
    return items.map((item) => {
      const got = item.read([]);
      return got.set ? got.value : undefined;
    });
  }

  function render(values) {
    for (const key of [...ctx.fields.keys()]) if (key.startsWith(`${path}.`)) ctx.fields.delete(key);
    items = [];
    list.replaceChildren();
    values.forEach((v, i) => {
      const f = field(ctx, join(path, i), itemSchema, v === undefined && kindOf(itemSchema) === 'object' ? {} : v, true, `#${i + 1}`, {item: true});
      const remove = h('button', {type: 'button', class: 'link remove', 'aria-label': `Remove item ${i + 1}`, onclick: () => {
        const now = snapshot();
        now.splice(i, 1);
        render(now);
      }}, 'Remove');
      items.push(f);
      list.append(h('li', {}, f.el, remove));
    });
  }

  render(Array.isArray(value) ? value : []);
  const had = value !== null && value !== undefined;
  return {
    el: h('div', {class: 'array'}, list, add),
    input: null,
    read(errors) {
      if (!items.length && !had && s.default === undefined) return {value: undefined, set: false};
      return {value: items.map((item) => item.read(errors).value), set: true};
    },
  };
}
