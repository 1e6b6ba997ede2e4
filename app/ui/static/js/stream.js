// A cluster's live event stream in the browser. EventSource cannot send an Authorization
// header, so the page asks for a short-lived stream token (POST /clusters/{id}/stream-tokens,
// with the team token) and opens the URL it comes with. EventSource reconnects by itself
// after a drop, resuming with Last-Event-ID; when it gives up (token expired: 401; the
// stream finished: 204) this asks the JSON page what is left, then either stops or opens a
// new stream with a new token from where it was.

import { api, ApiError, url } from "./api.js";

const STATUSES = {
  cluster: ["pending", "provisioning", "bootstrapping", "ready", "terminating", "terminated",
    "failed", "notice"],
  node: ["pending", "creating", "starting", "bootstrapping", "ready", "terminating",
    "terminated", "output"],
};
export const EVENT_TYPES = Object.entries(STATUSES).flatMap(
  ([kind, names]) => names.map((name) => `${kind}.${name}`));

/**
 * Follows the events of `clusterId` after `after`. Calls onEvent({id, type, data}) once per
 * event, in order, and onState("connecting" | "live" | "reconnecting" | "finished" |
 * "gone"). Returns a function that stops it.
 */
export function followEvents(clusterId, { after = 0, onEvent, onState }) {
  let last = after;
  let source = null;
  let stopped = false;
  let failures = 0;
  let timer = null;

  const deliver = (event) => {
    if (event.id <= last) return; // a replay after a reconnect can overlap
    last = event.id;
    onEvent(event);
  };

  const retryLater = () => {
    failures += 1;
    const delay = Math.min(30000, 1000 * 2 ** Math.min(failures, 5));
    onState("reconnecting");
    timer = setTimeout(open, delay);
  };

  async function open() {
    if (stopped) return;
    onState(last ? "reconnecting" : "connecting");
    let token;
    try {
      token = (await api(`clusters/${clusterId}/stream-tokens`, { method: "POST" })).body;
    } catch (error) {
      if (stopped) return;
      if (error instanceof ApiError && error.status === 404) return onState("gone");
      if (error instanceof ApiError && error.status === 401) return; // signed out
      return retryLater();
    }
    if (stopped) return;
    const target = url(token.events_url);
    if (last) target.searchParams.set("after", String(last));
    source = new EventSource(target);
    const onMessage = (message) => {
      failures = 0;
      deliver({ id: Number(message.lastEventId), type: message.type,
                data: JSON.parse(message.data) });
    };
    for (const type of EVENT_TYPES) source.addEventListener(type, onMessage);
    source.onopen = () => {
      failures = 0;
      onState("live");
    };
    source.onerror = () => {
      if (stopped) return;
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        source = null;
        catchUp();
      } else {
        onState("reconnecting"); // the browser retries by itself, with Last-Event-ID
      }
    };
  }

  // EventSource gave up: read what is left as JSON pages; stop if the stream is over.
  async function catchUp() {
    try {
      for (;;) {
        const page = (await api(`clusters/${clusterId}/events?after=${last}`)).body;
        for (const item of page.items) deliver(item);
        if (page.finished && last >= page.last_id) {
          onState("finished");
          return;
        }
        if (!page.items.length) break;
      }
    } catch (error) {
      if (stopped) return;
      if (error instanceof ApiError && error.status === 404) return onState("gone");
      if (error instanceof ApiError && error.status === 401) return;
      return retryLater();
    }
    open();
  }

  open();
  return () => {
    stopped = true;
    clearTimeout(timer);
    source?.close();
  };
}
