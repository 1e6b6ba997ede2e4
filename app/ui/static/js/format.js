// Numbers, times and statuses as people read them.

export const CLUSTER_STATUSES = ["pending", "provisioning", "bootstrapping", "ready",
  "terminating", "terminated", "failed"];
export const LIVE_STATUSES = ["pending", "provisioning", "bootstrapping", "ready", "terminating"];
export const TERMINAL = new Set(["terminated", "failed"]);

export function money(value, digits = 2) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  const abs = Math.abs(value);
  // Small amounts keep their cents' fractions: a young cluster has cost $0.0042.
  const places = abs > 0 && abs < 1 ? Math.max(digits, 4) : digits;
  return "$" + value.toLocaleString("en-US", { minimumFractionDigits: places,
                                               maximumFractionDigits: places });
}

export function rate(value) {
  if (value === null || value === undefined) return "—";
  // Prices have up to 4 decimals ($0.069/h), shown without trailing zeros past the cents.
  return "$" + value.toLocaleString("en-US", { minimumFractionDigits: 2,
                                               maximumFractionDigits: 4 }) + "/h";
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function age(iso, now = Date.now()) {
  return iso ? duration((now - Date.parse(iso)) / 1000) : "—";
}

export function clock(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function dateTime(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

/**
 * The cluster's accrued cost now: the API's figure when the response arrived (`at`, ms),
 * plus what its billing nodes cost since (hourly_rate is their sum). Computed from the
 * server's own figure, so the client's clock only measures the few seconds in between.
 */
export function accruedNow(cluster, at, now = Date.now()) {
  if (!cluster) return null;
  const since = Math.max(0, now - (at || now)) / 3600000;
  return cluster.accrued_cost + (cluster.hourly_rate || 0) * since;
}

export function gpuLabel(cluster) {
  const name = (cluster.gpu_type || "").replace(/^NVIDIA (GeForce )?/, "");
  return `${cluster.gpu_count}× ${name}`;
}

export function nodesSummary(cluster) {
  const ready = cluster.nodes.filter((n) => n.status === "ready").length;
  if (TERMINAL.has(cluster.status) || cluster.status === "terminating") {
    const live = cluster.nodes.filter((n) => n.status !== "terminated").length;
    return live ? `${live} of ${cluster.node_count} up` : `${cluster.node_count}`;
  }
  return `${ready}/${cluster.node_count}`;
}
