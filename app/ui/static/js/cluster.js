// One cluster: its figures, nodes (addresses, ssh commands), the live event timeline and
// bootstrap output (the event stream, through a stream token), and delete.

import { useEffect, useRef, useState } from "../vendor/hooks.js";
import { api, ApiError } from "./api.js";
import { ConfirmDialog, CopyButton, html, Problem, StatusBadge, useNow,
  usePoll } from "./components.js";
import { accruedNow, age, clock, duration, gpuLabel, money, rate,
  TERMINAL } from "./format.js";
import { followEvents } from "./stream.js";

const POLL_MS = 3000;
const MAX_LINES = 5000;
const MAX_TIMELINE = 500;

export function ClusterPage({ id }) {
  const [answer, setAnswer] = useState(null); // {cluster, at}
  const [error, setError] = useState(null);
  const [missing, setMissing] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const now = useNow(1000);

  const refresh = usePoll(async (signal) => {
    try {
      const r = await api(`clusters/${id}`, { conditional: true, signal });
      setAnswer({ cluster: r.body, at: r.at });
      setError(null);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) setMissing(true);
      else throw err;
    }
  }, POLL_MS, [id], setError);

  const activity = useActivity(id, refresh);

  if (missing) {
    return html`<section class="page"><a class="back" href="#/">← Clusters</a>
      <div class="empty"><p>No cluster with that id belongs to your team.</p></div></section>`;
  }
  const c = answer?.cluster;

  const remove = async () => {
    setDeleting(true);
    try {
      const r = await api(`clusters/${id}`, { method: "DELETE" });
      setAnswer({ cluster: r.body, at: r.at });
      setConfirming(false);
      refresh();
    } catch (err) {
      setError(err);
      setConfirming(false);
    } finally {
      setDeleting(false);
    }
  };

  const deletable = c && !TERMINAL.has(c.status) && c.status !== "terminating";
  return html`<section class="page cluster-page">
    <a class="back" href="#/">← Clusters</a>
    <div class="page-head">
      <h1 class="cluster-title">${c ? c.name : html`<span class="bar inline"></span>`}</h1>
      ${c && html`<${StatusBadge} status=${c.status} />`}
      <span class="grow"></span>
      <button class="button danger" disabled=${!deletable} onClick=${() => setConfirming(true)}>
        Delete</button>
    </div>
    <${Problem} error=${error} />
    ${c && c.reason && html`<div class=${`banner ${c.status === "failed" ? "error" : "info"}`}>
      <strong>${c.reason}</strong>${c.message ? `: ${c.message}` : ""}</div>`}
    <${Summary} cluster=${c} at=${answer?.at} now=${now} />
    <h2>Nodes</h2>
    <${Nodes} cluster=${c} />
    <${Activity} activity=${activity} />
    <${ConfirmDialog} open=${confirming} title=${c ? `Delete ${c.name}?` : "Delete?"}
      confirmLabel="Delete cluster" busy=${deleting} onConfirm=${remove}
      onCancel=${() => setConfirming(false)}>
      <p>Every pod of this cluster is terminated and its billing stops. This cannot be undone.</p>
      ${c && html`<p class="muted">${c.node_count} node(s), ${rate(c.hourly_rate)} now.</p>`}
    <//>
  </section>`;
}

function Stat({ label, children, testid }) {
  return html`<div class="stat"><div class="label">${label}</div>
    <div class="value num" data-testid=${testid}>${children}</div></div>`;
}

function Summary({ cluster: c, at, now }) {
  if (!c) return html`<div class="stats">${[0, 1, 2, 3, 4, 5].map((i) => html`<div class="stat"
    key=${i}><div class="label"> </div><div class="value"><span class="bar"></span></div></div>`)}</div>`;
  const ttl = c.ttl_seconds ? duration(c.ttl_seconds) : "none";
  const expires = c.expires_at
    ? `in ${duration((Date.parse(c.expires_at) - now) / 1000)}` : ttl;
  return html`<div class="stats">
    <${Stat} label=${`GPU · ${c.cloud_type}`}>${gpuLabel(c)}<//>
    <${Stat} label="Hourly rate" testid="rate">${c.hourly_rate ? rate(c.hourly_rate) : "—"}<//>
    <${Stat} label="Accrued" testid="accrued">${money(accruedNow(c, at, now))}<//>
    <${Stat} label="Age">${age(c.created_at, now)}<//>
    <${Stat} label=${c.expires_at ? "Expires" : "TTL"}>${TERMINAL.has(c.status) ? ttl : expires}<//>
    <${Stat} label="Max hourly cost">${c.max_hourly_cost ? rate(c.max_hourly_cost) : "none"}<//>
  </div>`;
}

function Nodes({ cluster: c }) {
  if (!c) return html`<div class="table-wrap"><table class="nodes"><tbody>
    <tr class="skeleton"><td><span class="bar"></span></td></tr></tbody></table></div>`;
  const ssh = c.nodes.some((n) => n.ssh_command); // an API that has them (DESIGN: ssh_command)
  return html`<div class="table-wrap"><table class="nodes">
    <thead><tr><th class="num">#</th><th>Status</th><th>Address</th>${ssh && html`<th>SSH</th>`}
      <th class="num">Rate</th><th>Data center</th></tr></thead>
    <tbody>${c.nodes.map((n) => html`<tr key=${n.index} data-node=${n.index}>
      <td data-label="Node" class="num">${n.index}</td>
      <td data-label="Status"><${StatusBadge} status=${n.status} small />
        ${n.reason && html`<span class="reason" title=${n.message || ""}>${n.reason}</span>`}</td>
      <td data-label="Address" class="mono">${n.public_ip
        ? `${n.public_ip}${n.ssh_port ? `:${n.ssh_port}` : ""}` : "—"}
        ${n.private_ip && html`<div class="muted small">private ${n.private_ip}</div>`}</td>
      ${ssh && html`<td data-label="SSH" class="ssh">${n.ssh_command
        ? html`<code class="mono">${n.ssh_command}</code> <${CopyButton} text=${n.ssh_command} />`
        : html`<span class="muted">—</span>`}</td>`}
      <td data-label="Rate" class="num">${rate(n.hourly_rate)}</td>
      <td data-label="Data center">${n.data_center_id || "—"}</td>
    </tr>`)}</tbody>
  </table></div>`;
}

// The stream's events: status changes and notices for the timeline, output lines by node.
function useActivity(id, refresh) {
  const [state, setState] = useState("connecting");
  const [timeline, setTimeline] = useState([]);
  const [lines, setLines] = useState([]);
  const pending = useRef(null);
  useEffect(() => {
    let queuedTimeline = [];
    let queuedLines = [];
    let frame = null;
    // Many events can arrive at once (a replay): render them together, once per frame.
    const flush = () => {
      frame = null;
      if (queuedTimeline.length) {
        const add = queuedTimeline;
        setTimeline((old) => [...old, ...add].slice(-MAX_TIMELINE));
      }
      if (queuedLines.length) {
        const add = queuedLines;
        setLines((old) => [...old, ...add].slice(-MAX_LINES));
      }
      queuedTimeline = [];
      queuedLines = [];
    };
    const stop = followEvents(id, {
      onState: setState,
      onEvent: (event) => {
        if (event.type === "node.output") queuedLines.push(event);
        else {
          queuedTimeline.push(event);
          // A status changed: read the cluster now rather than at the next poll.
          clearTimeout(pending.current);
          pending.current = setTimeout(refresh, 150);
        }
        if (frame === null) frame = requestAnimationFrame(flush);
      },
    });
    return () => {
      stop();
      cancelAnimationFrame(frame);
      clearTimeout(pending.current);
    };
  }, [id]);
  return { state, timeline, lines };
}

const STATE_TEXT = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…",
  finished: "Finished", gone: "Gone" };

function Activity({ activity }) {
  const { state, timeline, lines } = activity;
  const [node, setNode] = useState("all");
  const nodes = [...new Set(lines.map((l) => l.data.node))].sort((a, b) => a - b);
  const shown = node === "all" ? lines : lines.filter((l) => String(l.data.node) === node);
  const [timelineRef, onTimelineScroll] = useStickToBottom(timeline);
  return html`<div class="activity">
    <div class="panel">
      <div class="panel-head"><h2>Events</h2>
        <span class=${`stream-state ${state}`} data-testid="stream-state">${STATE_TEXT[state]}</span>
      </div>
      <ol class="timeline" data-testid="timeline" ref=${timelineRef} onScroll=${onTimelineScroll}>
        ${timeline.length === 0 && html`<li class="muted">No events yet.</li>`}
        ${timeline.map((e) => html`<li key=${e.id} data-type=${e.type}>
          <time>${clock(e.data.at)}</time>
          <span class="event-type">${e.type}</span>
          ${e.data.node !== undefined && html`<span class="muted">node ${e.data.node}</span>`}
          ${(e.data.reason || e.data.message) && html`<span class="event-msg">
            ${e.data.reason ? `${e.data.reason}: ` : ""}${e.data.message || ""}</span>`}
        </li>`)}
      </ol>
    </div>
    <div class="panel output-panel">
      <div class="panel-head"><h2>Bootstrap output</h2>
        <div class="node-tabs" role="tablist">
          ${["all", ...nodes.map(String)].map((k) => html`<button type="button" role="tab"
            class=${`chip small${node === k ? " active" : ""}`} aria-selected=${node === k}
            onClick=${() => setNode(k)}>${k === "all" ? "All nodes" : `node ${k}`}</button>`)}
        </div>
      </div>
      <${Output} lines=${shown} />
    </div>
  </div>`;
}

// Follows new content at the bottom, unless the reader scrolled up to read.
function useStickToBottom(content) {
  const ref = useRef(null);
  const stick = useRef(true);
  useEffect(() => {
    const el = ref.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [content]);
  const onScroll = () => {
    const el = ref.current;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
  };
  return [ref, onScroll];
}

function Output({ lines }) {
  const [ref, onScroll] = useStickToBottom(lines);
  return html`<pre class="output" ref=${ref} onScroll=${onScroll} data-testid="output"
    tabindex="0" aria-label="Bootstrap output">${lines.length === 0
      ? html`<span class="muted">No output yet.</span>`
      : lines.map((l) => html`<div class="line" key=${l.id} data-node=${l.data.node}><span
          class="gutter">${l.data.node}</span><span class="text">${l.data.line}</span></div>`)}</pre>`;
}
