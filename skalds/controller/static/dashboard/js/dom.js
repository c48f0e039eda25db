// Building the page from data: elements are made with h(), text always as text nodes, so
// nothing a task or a node says (ids, messages, tracebacks) is ever parsed as HTML.

const PROPERTIES = new Set(['value', 'checked', 'disabled', 'selected', 'hidden', 'open', 'indeterminate']);

/**
 * Make an element: h('a', {href: '#/tasks', class: 'link'}, 'Tasks', childNode, [more]).
 * Props named on* add listeners; dataset sets data-*; null, undefined and false are skipped.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'style' && typeof value === 'object') Object.assign(el.style, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (PROPERTIES.has(key)) el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

/** Append children (nodes, strings, numbers, nested arrays); null/undefined/false are skipped. */
export function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace all children of el. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A section with a heading and a body. */
export function panel(title, body, extra) {
  return h('section', {class: 'panel'}, h('header', {class: 'panel-head'}, h('h2', {}, title), extra), body);
}

/** A "nothing here" line. */
export function empty(text) {
  return h('p', {class: 'empty'}, text);
}

/** Escape text for use inside a regular expression (the API's id filter is one). */
export function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Run fn at most once per gapMs, and again after a run that was asked for while one was in
 * flight: a burst of events costs one or two refetches, never one each.
 */
export function coalesce(fn, gapMs = 250) {
  let running = false;
  let again = false;
  let timer = null;
  let stopped = false;
  async function run() {
    timer = null;
    if (stopped) return;
    running = true;
    again = false;
    try {
      await fn();
    } catch (err) {
      console.error(err);
    } finally {
      running = false;
      if (again && !stopped) schedule();
    }
  }
  function schedule() {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    if (timer === null) timer = setTimeout(run, gapMs);
  }
  schedule.now = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    if (!running) return run();
    again = true;
    return Promise.resolve();
  };
  schedule.stop = () => {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
  };
  return schedule;
}
