import type { Knex } from 'knex';

/** Which orders a requeue is about. Every field narrows the selection; none widens it. */
export interface RequeueSelector {
  /** Canonical order ids ("7", never "007"). */
  ids?: string[];
  /** updated_at bounds, inclusive: for a failed order, when it failed. */
  since?: Date;
  until?: Date;
  /** Case-insensitive substring of last_error, taken literally (% and _ are not wildcards). */
  errorLike?: string;
  /** Host of callback_url as callback_host() computes it: lower-case, no userinfo or port. */
  callbackHost?: string;
  /** At most this many orders change. */
  limit?: number;
  /** Said on purpose: no narrowing selector, every order at the requeued statuses. Kept for the audit. */
  all?: true;
}

/**
 * The SQL condition for a selector, for the requeue queries (count, keyset page). It never mentions
 * status: each query says which statuses it is about. `limit` is the caller's business.
 */
export function selectionWhere(selector: RequeueSelector): { sql: string; bindings: Knex.Value[] } {
  const parts: string[] = [];
  const bindings: Knex.Value[] = [];
  if (selector.ids) {
    parts.push('id = ANY(?::bigint[])');
    bindings.push(selector.ids as unknown as Knex.Value);
  }
  if (selector.since) {
    parts.push('updated_at >= ?');
    bindings.push(selector.since);
  }
  if (selector.until) {
    parts.push('updated_at <= ?');
    bindings.push(selector.until);
  }
  if (selector.errorLike) {
    // ILIKE's escape character is the backslash: escape it, then the wildcards, so the text is literal.
    parts.push("last_error ILIKE '%' || replace(replace(replace(?, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%'");
    bindings.push(selector.errorLike);
  }
  if (selector.callbackHost) {
    parts.push('callback_host(callback_url) = ?');
    bindings.push(selector.callbackHost);
  }
  return { sql: parts.length ? parts.join(' AND ') : 'true', bindings };
}
