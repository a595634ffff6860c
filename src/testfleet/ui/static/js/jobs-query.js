// The jobs page's address (filters, cursor) as an API request: small and without the view, so
// that the page registry can ask for a shared jobs page's data while the UI still starts.
import { query } from "./api.js";

export const WINDOWS = { "": "Any time", "1h": "Last hour", "24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days" };
const SECONDS = { "1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400 };
export const FILTERS = ["state", "tag", "requestor", "name", "since"];
const PAGE = 50;

export function filtersOf(search) {
  return Object.fromEntries(FILTERS.map((key) => [key, search.get(key) || ""]));
}

/** The API path of the jobs page at `search` (a URLSearchParams). */
export const jobsPath = (search) => jobsRequest(filtersOf(search), search.get("cursor") || "");

export function jobsRequest(filters, cursor) {
  const since = SECONDS[filters.since];
  const minute = Math.floor(Date.now() / 60000) * 60000; // the same request for a minute
  return `/jobs${query({
    state: filters.state,
    tag: filters.tag,
    requestor: filters.requestor,
    name_contains: filters.name,
    created_after: since ? new Date(minute - since * 1000).toISOString() : "",
    limit: PAGE,
    cursor,
  })}`;
}

