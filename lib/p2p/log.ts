// JSON-lines logging (pino) to stderr, so stdout stays free for command output.
import pino from "pino";

export type Logger = pino.Logger;

export function createLogger(component: string, level = process.env.ENTANGLE_LOG_LEVEL ?? "info"): Logger {
  return pino({ name: component, level, base: { pid: process.pid } }, pino.destination(2));
}
