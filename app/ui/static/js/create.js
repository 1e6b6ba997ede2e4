// The create form: a GPU picker from GET /gpu-types (price per cloud, availability), the
// shape of the cluster, setup, TTL and a price cap. The API validates; its 422 is shown
// next to the fields it names.

import { useEffect, useMemo, useRef, useState } from "../vendor/hooks.js";
import { api, ApiError, newKey } from "./api.js";
import { html, navigate } from "./components.js";
import { money, rate } from "./format.js";

// Problems that are about one field but carry no `errors` list.
const CODE_FIELD = {
  unknown_gpu_type: "gpu_type", ambiguous_gpu_type: "gpu_type", no_price: "gpu_type",
  cloud_type_unavailable: "cloud_type", gpu_count_too_high: "gpu_count",
  max_hourly_cost_exceeded: "max_hourly_cost",
};
const FIELDS = ["name", "gpu_type", "cloud_type", "gpu_count", "nodes", "setup", "ttl_seconds",
  "max_hourly_cost"];

function fieldErrors(error) {
  const out = {};
  let general = null;
  const problem = error instanceof ApiError ? error.problem : {};
  for (const e of problem.errors || []) {
    const field = FIELDS.find((f) => e.field === f || e.field.startsWith(`${f}.`));
    if (field) out[field] = out[field] ? `${out[field]}; ${e.message}` : e.message;
    else general = general ? `${general}; ${e.field}: ${e.message}` : `${e.field}: ${e.message}`;
  }
  const byCode = CODE_FIELD[problem.code];
  if (byCode && !out[byCode]) out[byCode] = error.message;
  if (!Object.keys(out).length && !general) {
    general = error instanceof TypeError ? "Hangar cannot be reached; try again." : error.message;
  }
  return { fields: out, general };
}

const AVAILABILITY = { HIGH: "high", MEDIUM: "medium", LOW: "low", NONE: "none" };

// Empty: null. Not a number: the text as typed, so the API says what is wrong with it.
function numberOrNull(text) {
  const t = String(text).trim();
  if (t === "") return null;
  const n = Number(t);
  return Number.isNaN(n) ? t : n;
}

export function CreatePage() {
  const [gpus, setGpus] = useState(null);
  const [gpuError, setGpuError] = useState(null);
  const [search, setSearch] = useState("");
  const [form, setForm] = useState({ name: "", gpu_type: "", cloud_type: "secure",
    gpu_count: "1", nodes: "1", setup: "", ttl_hours: "", max_hourly_cost: "" });
  const [errors, setErrors] = useState({ fields: {}, general: null });
  const [busy, setBusy] = useState(false);
  const key = useRef({ body: null, key: null });

  useEffect(() => {
    api("gpu-types").then((r) => setGpus(r.body)).catch(setGpuError);
  }, []);

  const set = (name) => (event) => setForm({ ...form, [name]: event.target.value });
  const selected = gpus?.find((g) => g.id === form.gpu_type);
  const price = selected
    ? (form.cloud_type === "secure" ? selected.price_secure : selected.price_community) : null;
  const estimate = price != null
    ? price * (Number(form.gpu_count) || 0) * (Number(form.nodes) || 0) : null;

  const visible = useMemo(() => {
    if (!gpus) return [];
    const q = search.trim().toLowerCase();
    const priceOf = (g) => (form.cloud_type === "secure" ? g.price_secure : g.price_community);
    return gpus
      .filter((g) => !q || `${g.id} ${g.display_name}`.toLowerCase().includes(q))
      .sort((a, b) => (priceOf(a) ?? 1e9) - (priceOf(b) ?? 1e9));
  }, [gpus, search, form.cloud_type]);

  const submit = async (event) => {
    event.preventDefault();
    const ttlHours = numberOrNull(form.ttl_hours);
    const body = {
      name: form.name.trim(),
      gpu_type: form.gpu_type,
      cloud_type: form.cloud_type,
      gpu_count: numberOrNull(form.gpu_count) ?? 1,
      nodes: numberOrNull(form.nodes) ?? 1,
      setup: form.setup,
    };
    if (ttlHours !== null) {
      body.ttl_seconds = typeof ttlHours === "number" ? Math.round(ttlHours * 3600) : ttlHours;
    }
    const cap = numberOrNull(form.max_hourly_cost);
    if (cap !== null) body.max_hourly_cost = cap;
    // The same body is the same request: a retry after a lost answer is not a second cluster.
    const text = JSON.stringify(body);
    if (key.current.body !== text) key.current = { body: text, key: newKey() };
    setBusy(true);
    setErrors({ fields: {}, general: null });
    try {
      const r = await api("clusters", { method: "POST", body,
                                        headers: { "Idempotency-Key": key.current.key } });
      navigate(`#/clusters/${r.body.id}`);
    } catch (error) {
      setErrors(fieldErrors(error));
      // Show the first problem (the form may be longer than the screen).
      requestAnimationFrame(() => document.querySelector(".field.invalid, .create .banner.error")
        ?.scrollIntoView({ block: "start", behavior: "instant" }));
    } finally {
      setBusy(false);
    }
  };

  const err = errors.fields;
  const Field = ({ name, label, hint, children }) => html`<label class=${`field${err[name] ? " invalid" : ""}`}>
    <span>${label}</span>${children}
    ${err[name]
      ? html`<span class="field-error" role="alert" data-field=${name}>${err[name]}</span>`
      : hint && html`<span class="hint">${hint}</span>`}
  </label>`;

  return html`<section class="page">
    <div class="page-head"><h1>New cluster</h1></div>
    <form class="create" onSubmit=${submit} novalidate>
      ${errors.general && html`<div class="banner error" role="alert">${errors.general}</div>`}
      <div class="grid-2">
        ${Field({ name: "name", label: "Name", hint: "Lowercase letters, digits and dashes.",
          children: html`<input name="name" value=${form.name} onInput=${set("name")}
            autocomplete="off" spellcheck="false" placeholder="train-llama"
            aria-invalid=${err.name ? "true" : "false"} />` })}
        <fieldset class=${`field${err.cloud_type ? " invalid" : ""}`}>
          <legend>Cloud</legend>
          <div class="segmented">
            ${["secure", "community"].map((c) => html`<label class=${form.cloud_type === c ? "on" : ""}>
              <input type="radio" name="cloud_type" value=${c} checked=${form.cloud_type === c}
                onChange=${set("cloud_type")} />${c}</label>`)}
          </div>
          ${err.cloud_type && html`<span class="field-error" role="alert" data-field="cloud_type">${err.cloud_type}</span>`}
        </fieldset>
      </div>

      <fieldset class=${`field gpu-field${err.gpu_type ? " invalid" : ""}`}>
        <legend>GPU</legend>
        <input type="search" class="gpu-search" placeholder="Filter: 4090, h100, a100…"
          value=${search} onInput=${(e) => setSearch(e.target.value)} aria-label="Filter GPU types" />
        <div class="gpu-list" role="radiogroup" aria-label="GPU type">
          ${gpuError && html`<div class="banner error">Could not read the GPU catalog: ${gpuError.message}</div>`}
          ${!gpus && !gpuError && html`<div class="muted pad">Loading the catalog…</div>`}
          ${gpus && visible.length === 0 && html`<div class="muted pad">No GPU type matches.</div>`}
          ${visible.map((g) => {
            const offered = form.cloud_type === "secure" ? g.secure : g.community;
            return html`<label key=${g.id} class=${`gpu-option${form.gpu_type === g.id ? " on" : ""}${offered ? "" : " off"}`}>
              <input type="radio" name="gpu_type" value=${g.id} checked=${form.gpu_type === g.id}
                onChange=${set("gpu_type")} />
              <span class="gpu-name">${g.display_name}${" "}
                <span class="muted small">${g.memory_gb ? `${g.memory_gb} GB` : ""}</span></span>
              <span class="gpu-price num ${form.cloud_type === "secure" ? "hl" : ""}">
                <span class="muted small">secure</span> ${g.secure ? rate(g.price_secure) : "—"}</span>
              <span class="gpu-price num ${form.cloud_type === "community" ? "hl" : ""}">
                <span class="muted small">community</span> ${g.community ? rate(g.price_community) : "—"}</span>
              <span class=${`avail ${AVAILABILITY[g.availability] || "none"}`}>${(g.availability || "none").toLowerCase()}</span>
            </label>`;
          })}
        </div>
        ${err.gpu_type && html`<span class="field-error" role="alert" data-field="gpu_type">${err.gpu_type}</span>`}
      </fieldset>

      <div class="grid-4">
        ${Field({ name: "gpu_count", label: "GPUs per node", children: html`<input name="gpu_count"
          inputmode="numeric" value=${form.gpu_count} onInput=${set("gpu_count")} />` })}
        ${Field({ name: "nodes", label: "Nodes", children: html`<input name="nodes"
          inputmode="numeric" value=${form.nodes} onInput=${set("nodes")} />` })}
        ${Field({ name: "ttl_seconds", label: "TTL (hours)", hint: "Torn down this long after ready; empty: none.",
          children: html`<input name="ttl_hours" inputmode="decimal" value=${form.ttl_hours}
            onInput=${set("ttl_hours")} placeholder="none" />` })}
        ${Field({ name: "max_hourly_cost", label: "Max hourly cost ($/h)", hint: "Refused above it; empty: no cap.",
          children: html`<input name="max_hourly_cost" inputmode="decimal" value=${form.max_hourly_cost}
            onInput=${set("max_hourly_cost")} placeholder="no cap" />` })}
      </div>

      ${Field({ name: "setup", label: "Setup script", hint: "Bash, run as root on every node at bootstrap.",
        children: html`<textarea name="setup" rows="6" spellcheck="false" value=${form.setup}
          onInput=${set("setup")} placeholder=${"nvidia-smi\npip install -r requirements.txt"}></textarea>` })}

      <div class="submit-row">
        <div class="estimate" data-testid="estimate">${estimate === null
          ? html`<span class="muted">Pick a GPU to see the price.</span>`
          : html`<span class="muted">Estimated</span> <strong class="num">${rate(estimate)}</strong>${" "}
              <span class="muted">· ${money(estimate * 24)} a day</span>`}</div>
        <button class="button primary" type="submit" disabled=${busy}>
          ${busy ? "Creating…" : "Create cluster"}</button>
      </div>
    </form>
  </section>`;
}
