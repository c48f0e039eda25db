// Server-Sent Events over fetch(), because EventSource cannot send an Authorization header.
// Follows the text/event-stream format (id:, event:, data:, retry:, comments), reconnects
// with Last-Event-ID after a drop, and asks for an API key when the stream answers 401.

import {authHeaders, apiKey, requestKey} from './api.js';

/**
 * Split a text/event-stream into events. feed() takes decoded text in arbitrary chunks and
 * returns the complete events it closed: [{id, event, data}] (id undefined when not set).
 */
export class SseParser {
  constructor() {
    this.buffer = '';
    this.reset();
    this.retry = null;
    this.lastEventId = undefined;
  }

  reset() {
    this.data = [];
    this.type = '';
    this.sawId = false;
  }

  feed(chunk) {
    this.buffer += chunk;
    const events = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A lone \r at the end may be the first half of \r\n: wait for the next chunk.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const event = this.line(line);
      if (event) events.push(event);
    }
    return events;
  }

  line(line) {
    if (line === '') {
      if (!this.data.length) {
        this.reset();
        return null;
      }
      const event = {id: this.lastEventId, event: this.type || 'message', data: this.data.join('\n')};
      this.reset();
      return event;
    }
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.type = value;
    else if (field === 'id' && !value.includes('\0')) this.lastEventId = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
    return null;
  }
}

/**
 * One stream, kept open: start() connects, and after a drop it connects again with the last
 * event id it saw (backing off up to 15 s). stop() closes it for good.
 *
 * Callbacks: onEvent({id, event, data}) with data parsed as JSON when it is JSON;
 * onState('connecting'|'open'|'retrying'|'unavailable'|'stopped', detail);
 * onOpen(reconnected) after each successful connect; await beforeReconnect() before each
 * connect after the first.
 */
export class EventStream {
  constructor(path, {onEvent, onState = () => {}, onOpen = () => {}, beforeReconnect = null, resume = true} = {}) {
    this.path = path;
    this.beforeReconnect = beforeReconnect;
    this.onEvent = onEvent;
    this.onState = onState;
    this.onOpen = onOpen;
    this.resume = resume;
    this.lastEventId = undefined;
    this.controller = null;
    this.stopped = false;
    this.connects = 0;
  }

  start() {
    this.stopped = false;
    this.run();
    return this;
  }

  stop() {
    this.stopped = true;
    if (this.controller) this.controller.abort();
    this.onState('stopped');
  }

  /** Forget the position: the next connect starts at the newest event. */
  forgetPosition() {
    this.lastEventId = undefined;
  }

  async run() {
    let failures = 0;
    let retryMs = 2000;
    while (!this.stopped) {
      this.controller = new AbortController();
      this.onState(this.connects ? 'retrying' : 'connecting');
      let opened = false;
      try {
        if (this.connects && this.beforeReconnect) await this.beforeReconnect();
        const headers = {Accept: 'text/event-stream', ...authHeaders()};
        if (this.resume && this.lastEventId !== undefined) headers['Last-Event-ID'] = this.lastEventId;
        const res = await fetch(this.path, {headers, signal: this.controller.signal, cache: 'no-store'});
        if (res.status === 401) {
          const key = await requestKey(apiKey() ? 'The controller refused this API key.' : 'This controller asks for an API key.');
          if (!key) {
            this.onState('unavailable', 'an API key is needed');
            return;
          }
          continue;
        }
        if (res.status === 404 || res.status === 405) {
          this.onState('unavailable', 'this controller does not offer it');
          return;
        }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        opened = true;
        failures = 0;
        this.onState('open');
        this.onOpen(this.connects > 0);
        this.connects += 1;
        const parser = new SseParser();
        parser.lastEventId = this.lastEventId;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const {value, done} = await reader.read();
          if (done || this.stopped) break;
          for (const event of parser.feed(value)) {
            if (event.id !== undefined) this.lastEventId = event.id;
            let data = event.data;
            try {
              data = JSON.parse(event.data);
            } catch {
              // not JSON: hand over the text as it is
            }
            this.onEvent({id: event.id, event: event.event, data});
          }
          if (parser.retry !== null) retryMs = parser.retry;
        }
      } catch (err) {
        if (this.stopped) return;
        if (err && err.name !== 'AbortError') console.warn('event stream', this.path, err);
      }
      if (this.stopped) return;
      if (!opened) failures += 1;
      const wait = Math.min(15_000, retryMs * 2 ** Math.min(failures, 3));
      this.onState('retrying', `again in ${Math.round(wait / 1000)} s`);
      await new Promise((resolve) => setTimeout(resolve, opened ? retryMs : wait));
    }
  }
}
