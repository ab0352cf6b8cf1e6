// HOST:PORT pieces shared by the renderers (bad input becomes a status message) and the CLI and
// agent (lib/p2p/addr.ts: bad input throws AddrError). No dependencies: the webhook loads it too.
import { isIP } from "node:net";

export interface HostPort {
  host: string;
  port: number;
}

/** 1-65535 from a number or a decimal string (surrounding blanks allowed), else undefined. */
export function portNumber(value: unknown): number | undefined {
  const text = typeof value === "number" ? String(value) : typeof value === "string" ? value.trim() : "";
  if (!/^[0-9]{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/** HOST:PORT, with IPv6 literals bracketed as the CLI expects. */
export function formatHostPort({ host, port }: HostPort): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
