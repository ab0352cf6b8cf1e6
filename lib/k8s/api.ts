// Small helpers for answers of the Kubernetes API, from either client we use (Pepr's
// kubernetes-fluent-client reports `status`, @kubernetes/client-node reports `code`).

export function notFound(err: unknown): boolean {
  const e = err as { status?: number; code?: number } | undefined;
  return e?.status === 404 || e?.code === 404;
}

/** The API server's own message where there is one (e.g. a refused apply). */
export function apiMessage(err: unknown): string {
  const e = err as { data?: { message?: string }; message?: string };
  return e?.data?.message ?? e?.message ?? String(err);
}

/**
 * Whether two JSON values are the same whatever the order of their keys: the API server
 * returns objects with its own key order, so comparing JSON text would see a change in every
 * status we read back and write it again.
 */
export function sameJson(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/** JSON text with object keys sorted and null/undefined fields left out. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, value: unknown) =>
    value && typeof value === "object" && !Array.isArray(value)
      ? Object.fromEntries(
          Object.entries(value as Record<string, unknown>)
            .filter(([, x]) => x !== undefined && x !== null)
            .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)),
        )
      : value,
  );
}

/** The watch phase (kubernetes-fluent-client's WatchPhase, which its index does not export) of a deletion. */
export const DELETED = "DELETED";
