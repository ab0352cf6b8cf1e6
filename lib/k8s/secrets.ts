// Looks at the Secret an Entanglement or Manifests names, to explain problems in its status.
import { K8s, kind } from "pepr";
import { TOKEN_KEY } from "../render/agent.ts";
import { notFound } from "./api.ts";
import { parseToken } from "../p2p/token.ts";

export type SecretCheck = { ok: true; token: string } | { ok: false; reason: "SecretNotFound" | "SecretKeyMissing" | "InvalidToken"; message: string };

export async function checkTokenSecret(namespace: string, name: string): Promise<SecretCheck> {
  let secret: kind.Secret;
  try {
    secret = await K8s(kind.Secret).InNamespace(namespace).Get(name);
  } catch (err) {
    if (notFound(err)) return { ok: false, reason: "SecretNotFound", message: `Secret ${namespace}/${name} not found` };
    throw err;
  }
  const raw = secret.data?.[TOKEN_KEY] ?? (secret.stringData as Record<string, string> | undefined)?.[TOKEN_KEY];
  if (!raw) return { ok: false, reason: "SecretKeyMissing", message: `Secret ${namespace}/${name} has no key ${TOKEN_KEY}` };
  // Pepr's K8s client hands Secret data over base64-encoded, as the API serves it
  const token = secret.data?.[TOKEN_KEY] ? Buffer.from(raw, "base64").toString("utf8").trim() : raw.trim();
  try {
    parseToken(token);
  } catch (err) {
    return { ok: false, reason: "InvalidToken", message: `Secret ${namespace}/${name} key ${TOKEN_KEY}: ${(err as Error).message}` };
  }
  return { ok: true, token };
}
