// The one rule for service names (serviceUUID, the sidecar's /service, the agent's --service):
// 1 to 253 characters counted as Unicode code points (as the API server counts maxLength and
// CEL counts size()), at least one visible character, no control characters. The CRD schemas
// use SERVICE_NAME_MAX and SERVICE_NAME_PATTERN, so admission, sidecar and agent agree.

export const SERVICE_NAME_MAX = 253;
/** Valid in JavaScript and in the API server's RE2: explicit ranges, no \s or \S (their meaning differs). */
export const SERVICE_NAME_PATTERN = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$";
const VALID = new RegExp(SERVICE_NAME_PATTERN);

/** Why `name` is not a usable service name, or undefined when it is. */
export function serviceNameProblem(name: string): string | undefined {
  const length = [...name].length;
  if (length === 0 || length > SERVICE_NAME_MAX) return `must be 1-${SERVICE_NAME_MAX} characters, got ${length}`;
  if (!VALID.test(name)) return "must contain a visible character and no control characters";
  return undefined;
}
