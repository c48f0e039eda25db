// Toasts, a confirm dialog, modal dialogs for forms, and the API key prompt.

import {h} from './dom.js';

/** A short message in the corner: kind 'ok', 'error' or 'info'. */
export function toast(text, kind = 'info', timeoutMs = 5000) {
  const box = document.getElementById('toasts');
  const el = h('div', {class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : null},
    h('span', {}, text),
    h('button', {type: 'button', class: 'link', 'aria-label': 'Dismiss', onclick: () => el.remove()}, '×'));
  box.append(el);
  if (timeoutMs) setTimeout(() => el.remove(), kind === 'error' ? timeoutMs * 2 : timeoutMs);
  return el;
}

/** A modal dialog around content; returns {dialog, close}. Closed dialogs remove themselves. */
export function modal(title, content, {wide = false, onClose} = {}) {
  const dialog = h('dialog', {class: wide ? 'wide' : null, 'aria-label': title},
    h('div', {class: 'dialog-head'},
      h('h2', {}, title),
      h('button', {type: 'button', class: 'link close', 'aria-label': 'Close', onclick: () => dialog.close()}, '×')),
    content);
  dialog.addEventListener('close', () => {
    dialog.remove();
    if (onClose) onClose();
  });
  document.body.append(dialog);
  dialog.showModal();
  return {dialog, close: () => dialog.close()};
}

/** Ask yes or no in a dialog of the page (not the browser's confirm()). Resolves true/false. */
export function confirmAction(title, text, yes = 'Yes', danger = false) {
  return new Promise((resolve) => {
    let answer = false;
    const {close} = modal(title, h('div', {class: 'dialog-body'},
      h('p', {}, text),
      h('div', {class: 'dialog-actions'},
        h('button', {type: 'button', class: 'secondary', onclick: () => close()}, 'No'),
        h('button', {type: 'button', class: danger ? 'danger' : 'primary', onclick: () => {
          answer = true;
          close();
        }}, yes))), {onClose: () => resolve(answer)});
  });
}

/** Ask for an API key in the page's key dialog; resolves with the key or null. */
export function promptForKey(reason) {
  const dialog = document.getElementById('key-dialog');
  const form = dialog.querySelector('form');
  const input = form.elements.key;
  document.getElementById('key-reason').textContent = reason || 'This controller asks for an API key.';
  input.value = '';
  // Cancel is no submit button, so Enter in the field always means "use this key".
  document.getElementById('key-cancel').onclick = () => dialog.close('cancel');
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      const key = dialog.returnValue === 'ok' ? input.value.trim() : '';
      resolve(key || null);
    }, {once: true});
    dialog.returnValue = '';
    dialog.showModal();
    input.focus();
  });
}
