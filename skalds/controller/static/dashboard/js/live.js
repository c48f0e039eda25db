// The one stream of /api/events the whole page shares. Pages subscribe with live.on(fn) and
// get each event; after a reconnect or a `reset` they get {event: 'refetch'} and read their
// data again, so nothing missed during a drop stays wrong on screen.

import {api} from './api.js';
import {EventStream} from './sse.js';

const listeners = new Set();
const stateListeners = new Set();
let stream = null;
let state = 'connecting';

function emit(event) {
  for (const fn of [...listeners]) {
    try {
      fn(event);
    } catch (err) {
      console.error(err);
    }
  }
}

/** Subscribe to every event; returns the function that unsubscribes. */
export function on(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Subscribe to the stream's state ('connecting', 'open', 'retrying', 'unavailable'). */
export function onState(fn) {
  stateListeners.add(fn);
  fn(state);
  return () => stateListeners.delete(fn);
}

async function checkPosition() {
  // A controller that restarted numbers its events from 1 again: resuming after our old
  // position would hide everything up to it, so start over from its newest event.
  if (stream.lastEventId === undefined) return;
  try {
    const status = await api('/api/events/status');
    const ours = Number(stream.lastEventId);
    if (Number.isFinite(ours) && typeof status.lastEventId === 'number' && status.lastEventId < ours) {
      stream.forgetPosition();
    }
  } catch {
    // the stream itself will say what is wrong
  }
}

export function start() {
  if (stream) return;
  stream = new EventStream('/api/events', {
    onEvent(event) {
      if (event.event === 'hello') return;
      if (event.event === 'reset') emit({event: 'refetch', data: event.data});
      else emit(event);
    },
    onState(next, detail) {
      state = next;
      for (const fn of stateListeners) fn(next, detail);
    },
    beforeReconnect: checkPosition,
    onOpen(reconnected) {
      if (reconnected) emit({event: 'refetch', data: {reason: 'reconnected'}});
    },
  }).start();
}

/** Connect again from scratch (a new API key: the old connection carries the old one). */
export function restart() {
  if (stream) stream.stop();
  stream = null;
  start();
}
