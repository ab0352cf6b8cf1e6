// Looks at the Secret an Entanglement or Manifests names, to explain problems in its status.
import { K8s, kind } from "pepr";
import { TOKEN_KEY } from "../render/agent.ts";
import { notFound } from "./api.ts";
import { parseToken } from "../p2p/token.ts";
import { toPeerMultiaddr } from "../p2p/addr.ts";

export type SecretCheck = { ok: true; token: string } | { ok: false; reason: "SecretNotFound" | "SecretKeyMissing" | "InvalidToken"; message: string };

/** A check's outcome without the token: what a cache may keep (never a Secret's data). */
export type SecretOutcome = { ok: true } | Extract<SecretCheck, { ok: false }>;

export function outcomeOf(check: SecretCheck): SecretOutcome {
  return check.ok ? { ok: true } : check;
}

/** A deleted Secret's outcome. */
export function secretNotFound(namespace: string, name: string): SecretOutcome {
  return { ok: false, reason: "SecretNotFound", message: `Secret ${namespace}/${name} not found` };
}

export async function checkTokenSecret(namespace: string, name: string): Promise<SecretCheck> {
  let secret: kind.Secret;
  try {
    secret = await K8s(kind.Secret).InNamespace(namespace).Get(name);
  } catch (err) {
    if (notFound(err)) return secretNotFound(namespace, name) as SecretCheck;
    throw err;
  }
  return tokenFromSecret(secret, namespace, name);
}

/** The token in a Secret read from the API, or why there is none. */
export function tokenFromSecret(secret: Pick<kind.Secret, "data" | "stringData">, namespace: string, name: string): SecretCheck {
  const data = secret.data?.[TOKEN_KEY];
  const raw = data ?? (secret.stringData as Record<string, string> | undefined)?.[TOKEN_KEY];
  if (raw === undefined) return { ok: false, reason: "SecretKeyMissing", message: `Secret ${namespace}/${name} has no key ${TOKEN_KEY}` };
  // Pepr's K8s client hands Secret data over base64-encoded, as the API serves it
  const token = data !== undefined ? Buffer.from(raw, "base64").toString("utf8").trim() : raw.trim();
  if (token === "") return { ok: false, reason: "InvalidToken", message: `Secret ${namespace}/${name} key ${TOKEN_KEY} is empty` };
  try {
    // agents refuse a token with peers they cannot dial: say so here, before any agent exits
    for (const peer of parseToken(token).peers) toPeerMultiaddr(peer, "peer embedded in the network token");
  } catch (err) {
    return { ok: false, reason: "InvalidToken", message: `Secret ${namespace}/${name} key ${TOKEN_KEY}: ${(err as Error).message}` };
  }
  return { ok: true, token };
}
