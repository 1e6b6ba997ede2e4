// The team's clusters, newest first, kept live by a conditional poll (a 304 when nothing
// changed); accrued costs tick between polls from each cluster's hourly rate.

import { useRef, useState } from "../vendor/hooks.js";
import { api } from "./api.js";
import { html, navigate, Problem, StatusBadge, useNow, usePoll } from "./components.js";
import { accruedNow, age, CLUSTER_STATUSES, gpuLabel, LIVE_STATUSES, money, nodesSummary,
  rate } from "./format.js";

const POLL_MS = 2000;
const PAGE = 50;
const FILTERS = [["live", "Live"], ["all", "All"], ...CLUSTER_STATUSES.map((s) => [s, s])];

function query(filter) {
  const statuses = filter === "live" ? LIVE_STATUSES : filter === "all" ? [] : [filter];
  return [`limit=${PAGE}`, ...statuses.map((s) => `status=${s}`)].join("&");
}

export function ClustersPage({ params }) {
  const filter = FILTERS.some(([key]) => key === params.get("status"))
    ? params.get("status") : "live";
  const [first, setFirst] = useState(null); // {items, next, at} of the polled first page
  const [more, setMore] = useState([]); // further pages, loaded on request
  const [next, setNext] = useState(null);
  const [error, setError] = useState(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const extra = useRef(false); // pages beyond the first are loaded: `next` is theirs
  const now = useNow(1000);

  usePoll(async (signal) => {
    const answer = await api(`clusters?${query(filter)}`, { conditional: true, signal });
    setError(null);
    setFirst({ ...answer.body, at: answer.at, filter });
    if (!extra.current) setNext(answer.body.next);
  }, POLL_MS, [filter], setError);

  const loadMore = async () => {
    if (!next) return;
    setLoadingMore(true);
    try {
      const page = (await api(next)).body;
      extra.current = true;
      setMore([...more, ...page.items.map((c) => ({ ...c, _at: Date.now() }))]);
      setNext(page.next);
    } catch (err) {
      setError(err);
    } finally {
      setLoadingMore(false);
    }
  };

  const setFilter = (key) => {
    extra.current = false;
    setMore([]);
    setNext(null);
    setFirst(null);
    navigate(key === "live" ? "#/" : `#/?status=${key}`);
  };

  const current = first && first.filter === filter ? first : null;
  const seen = new Set();
  const rows = current
    ? [...current.items.map((c) => ({ ...c, _at: current.at })), ...more].filter(
      (c) => !seen.has(c.id) && seen.add(c.id))
    : null;

  return html`<section class="page">
    <div class="page-head">
      <h1>Clusters</h1>
      <a class="button primary" href="#/new">New cluster</a>
    </div>
    <div class="filters" role="toolbar" aria-label="Filter by status">
      ${FILTERS.map(([key, label]) => html`<button type="button"
        class=${`chip${key === filter ? " active" : ""}${CLUSTER_STATUSES.includes(key) ? ` status-${key}` : ""}`}
        aria-pressed=${key === filter} onClick=${() => setFilter(key)}>${label}</button>`)}
    </div>
    <${Problem} error=${error} />
    <div class="table-wrap">
      <table class="clusters">
        <thead><tr>
          <th>Name</th><th>Status</th><th>GPU</th><th class="num">Nodes</th>
          <th class="num">Rate</th><th class="num">Accrued</th><th class="num">Age</th>
        </tr></thead>
        <tbody>
          ${rows === null && [0, 1, 2].map((i) => html`<tr class="skeleton" key=${i}>
            <td colspan="7"><span class="bar"></span></td></tr>`)}
          ${rows && rows.map((c) => html`<${Row} key=${c.id} cluster=${c} now=${now} />`)}
        </tbody>
      </table>
      ${rows && rows.length === 0 && html`<div class="empty">
        <p>${filter === "live" ? "No live clusters." : "No clusters here."}</p>
        <a class="button" href="#/new">Create a cluster</a></div>`}
    </div>
    ${next && html`<div class="more"><button class="button" onClick=${loadMore}
      disabled=${loadingMore}>${loadingMore ? "Loading…" : "Show more"}</button></div>`}
  </section>`;
}

function Row({ cluster: c, now }) {
  const open = () => navigate(`#/clusters/${c.id}`);
  return html`<tr class="row" data-cluster=${c.id} data-status=${c.status} onClick=${open}>
    <td data-label="Name" class="name"><a href=${`#/clusters/${c.id}`}
      onClick=${(e) => e.stopPropagation()}>${c.name}</a>
      ${c.reason && html`<span class="reason" title=${c.message || ""}>${c.reason}</span>`}</td>
    <td data-label="Status"><${StatusBadge} status=${c.status} /></td>
    <td data-label="GPU" class="gpu">${gpuLabel(c)}</td>
    <td data-label="Nodes" class="num">${nodesSummary(c)}</td>
    <td data-label="Rate" class="num">${c.hourly_rate ? rate(c.hourly_rate) : "—"}</td>
    <td data-label="Accrued" class="num">${money(accruedNow(c, c._at, now))}</td>
    <td data-label="Age" class="num">${age(c.created_at, now)}</td>
  </tr>`;
}
