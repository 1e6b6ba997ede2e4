// The shell: sign-in, the top bar with the team's spend, and a hash router
// (#/ the clusters, #/new the create form, #/clusters/<id> one cluster).

import { render } from "../vendor/preact.js";
import { useEffect, useRef, useState } from "../vendor/hooks.js";
import { api, ApiError, onSignOut, signIn, signedIn, signOut } from "./api.js";
import { ClusterPage } from "./cluster.js";
import { ClustersPage } from "./clusters.js";
import { html, usePoll } from "./components.js";
import { CreatePage } from "./create.js";
import { LIVE_STATUSES, money, rate } from "./format.js";

function parseRoute() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  const params = new URLSearchParams(query);
  const cluster = path.match(/^\/clusters\/([0-9a-f-]{36})$/i);
  if (cluster) return { page: "cluster", id: cluster[1], params };
  if (path === "/new") return { page: "new", params };
  return { page: "clusters", params };
}

function useRoute() {
  const [route, setRoute] = useState(parseRoute());
  useEffect(() => {
    const changed = () => {
      setRoute(parseRoute());
      window.scrollTo(0, 0);
    };
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return route;
}

function SignIn({ notice }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event) => {
    event.preventDefault();
    const token = value.trim();
    if (!token) return setError("Paste a team token.");
    setBusy(true);
    setError(null);
    signIn(token);
    try {
      await api("clusters?limit=1");
      window.dispatchEvent(new Event("hangar:signed-in"));
    } catch (err) {
      signOut();
      setError(err instanceof ApiError && err.status === 401
        ? "That token is unknown or revoked."
        : "Hangar cannot be reached; try again.");
    } finally {
      setBusy(false);
    }
  };

  return html`<main class="signin">
    <form class="card signin-card" onSubmit=${submit} novalidate>
      <div class="brand big"><${Logo} /> Hangar</div>
      <p class="muted">GPU clusters on demand. Sign in with your team's API token.</p>
      ${notice && html`<div class="banner warn" role="status">${notice}</div>`}
      <label class="field">
        <span>Team token</span>
        <input type="password" name="token" autocomplete="off" spellcheck="false"
          placeholder="hgr_…" value=${value} onInput=${(e) => setValue(e.target.value)}
          aria-invalid=${error ? "true" : "false"} aria-describedby="signin-error" autofocus />
        <span id="signin-error" class="field-error" role="alert">${error || ""}</span>
      </label>
      <button class="button primary wide" type="submit" disabled=${busy}>
        ${busy ? "Checking…" : "Sign in"}</button>
      <p class="hint">Kept in this tab only (session storage) and sent as a bearer header.
        Create one with <code>hangar keys create --team NAME</code>.</p>
    </form>
  </main>`;
}

function Logo() {
  return html`<svg class="logo" viewBox="0 0 24 24" aria-hidden="true">
    <path d="M2 11 12 4l10 7v9h-4v-7H6v7H2z" fill="currentColor" /></svg>`;
}

// Spend: from GET /team where the API has it (hourly spend now, live clusters, the month
// so far); otherwise (a 404) the hourly rate of every live cluster from a conditional poll
// of the live list, and no month figure.
function Spend() {
  const [spend, setSpend] = useState(null); // {hourly, live, month, team}
  const noTeam = useRef(false);
  const query = LIVE_STATUSES.map((s) => `status=${s}`).join("&");
  usePoll(async (signal) => {
    if (!noTeam.current) {
      try {
        const t = (await api("team", { conditional: true, signal })).body;
        setSpend({ hourly: t.hourly_spend, live: t.live_clusters,
                   month: typeof t.month_to_date_cost === "number" ? t.month_to_date_cost : null,
                   team: t.name });
        return;
      } catch (error) {
        if (!(error instanceof ApiError && (error.status === 404 || error.status === 405))) {
          throw error;
        }
        noTeam.current = true;
      }
    }
    const page = (await api(`clusters?${query}&limit=200`, { conditional: true, signal })).body;
    setSpend({ hourly: page.items.reduce((sum, c) => sum + c.hourly_rate, 0),
               live: page.items.length + (page.next ? "+" : ""), month: null, team: null });
  }, 3000, []);
  return html`<div class="spend" aria-label="Team spend">
    ${spend?.team && html`<div class="spend-item hide-phone"><span class="label">Team</span>
      <span class="value">${spend.team}</span></div>`}
    <div class="spend-item"><span class="label">Now</span>
      <span class="value num" data-testid="spend-now">${spend ? rate(spend.hourly) : "—"}</span></div>
    <div class="spend-item hide-phone"><span class="label">Live clusters</span>
      <span class="value num">${spend ? spend.live : "—"}</span></div>
    ${spend?.month != null && html`<div class="spend-item"><span class="label">This month</span>
      <span class="value num" data-testid="spend-month">${money(spend.month)}</span></div>`}
  </div>`;
}

function Shell({ route }) {
  const tab = route.page === "new" ? "new" : "clusters";
  return html`<div class="shell">
    <header class="topbar">
      <a class="brand" href="#/"><${Logo} /> Hangar</a>
      <nav class="tabs" aria-label="Sections">
        <a href="#/" class=${tab === "clusters" ? "active" : ""}
          aria-current=${tab === "clusters" ? "page" : undefined}>Clusters</a>
        <a href="#/new" class=${tab === "new" ? "active" : ""}
          aria-current=${tab === "new" ? "page" : undefined}>New cluster</a>
      </nav>
      <${Spend} />
      <button class="button ghost small signout" onClick=${() => signOut()}>Sign out</button>
    </header>
    <main class="content">
      ${route.page === "clusters" && html`<${ClustersPage} params=${route.params} />`}
      ${route.page === "new" && html`<${CreatePage} />`}
      ${route.page === "cluster" && html`<${ClusterPage} id=${route.id} key=${route.id} />`}
    </main>
  </div>`;
}

function App() {
  const route = useRoute();
  const [authed, setAuthed] = useState(signedIn());
  const [notice, setNotice] = useState(null);
  useEffect(() => {
    const signedInNow = () => {
      setNotice(null);
      setAuthed(true);
    };
    window.addEventListener("hangar:signed-in", signedInNow);
    const off = onSignOut((reason) => {
      setNotice(reason);
      setAuthed(false);
    });
    return () => {
      window.removeEventListener("hangar:signed-in", signedInNow);
      off();
    };
  }, []);
  return authed ? html`<${Shell} route=${route} />` : html`<${SignIn} notice=${notice} />`;
}

const root = document.getElementById("app");
root.textContent = ""; // the "Loading" placeholder
render(html`<${App} />`, root);
