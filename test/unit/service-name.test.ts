// One service-name rule for the CRDs, the sidecar labels and the agent's --service.
import { describe, expect, it } from "vitest";
import { SERVICE_NAME_MAX, serviceNameProblem } from "../../lib/p2p/service-name.ts";
import { entanglementCrd, manifestsCrd } from "../../lib/crds/definitions.ts";
import { parseSidecarRequest } from "../../lib/render/sidecar.ts";

type Any = Record<string, any>;

const emoji = "\u{1F600}"; // one character, two UTF-16 units
const cases: Array<[string, string, boolean]> = [
  ["plain", "foo", true],
  ["253 ASCII", "a".repeat(253), true],
  ["254 ASCII", "a".repeat(254), false],
  ["253 accented", "\u00e9".repeat(253), true],
  ["200 emoji (400 UTF-16 units)", emoji.repeat(200), true],
  ["254 emoji", emoji.repeat(254), false],
  ["inner space", "my service", true],
  ["empty", "", false],
  ["blank", "   ", false],
  ["newline", "a\nb", false],
  ["tab", "a\tb", false],
  ["DEL", "a\u007fb", false],
  ["C1 control", "a\u0085b", false],
];

/** The API server's check: maxLength counts characters (runes), pattern is an RE2 regexp. */
function crdAccepts(crd: Any, value: string): boolean {
  const s = crd.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.serviceUUID;
  return [...value].length >= s.minLength && [...value].length <= s.maxLength && new RegExp(s.pattern).test(value);
}

describe("service names: one rule", () => {
  it.each(cases)("%s", (_name, value, valid) => {
    const problem = serviceNameProblem(value);
    expect(problem === undefined, problem).toBe(valid);
    expect(crdAccepts(entanglementCrd, value)).toBe(valid);
    expect(crdAccepts(manifestsCrd, value)).toBe(valid);
  });

  it("the limit is the CRD's", () => {
    const s = (entanglementCrd as Any).spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.serviceUUID;
    expect(s.maxLength).toBe(SERVICE_NAME_MAX);
  });

  it("sidecar annotations with a bad service are not injected, with a warning naming the key", () => {
    for (const bad of ["a".repeat(254), "a\nb"]) {
      const p = parseSidecarRequest({
        metadata: {
          labels: { "entanglement.kairos.io/name": "s", "entanglement.kairos.io/target_port": "80" },
          annotations: { "entanglement.kairos.io/service": bad },
        },
      });
      expect(p.kind).toBe("incomplete");
      if (p.kind === "incomplete") {
        expect(p.invalid).toEqual(["entanglement.kairos.io/service"]);
        expect(p.message).toContain("entanglement.kairos.io/service");
      }
    }
    const long = parseSidecarRequest({
      metadata: {
        annotations: { "entanglement.kairos.io/name": "s", "entanglement.kairos.io/target_port": "80", "entanglement.kairos.io/service": emoji.repeat(200) },
      },
    });
    expect(long.kind).toBe("ok");
  });
});

describe("serviceNameProblem: the messages", () => {
  it("counts characters and says which rule failed", () => {
    expect(serviceNameProblem("")).toBe("must be 1-253 characters, got 0");
    expect(serviceNameProblem("a".repeat(254))).toBe("must be 1-253 characters, got 254");
    expect(serviceNameProblem(emoji.repeat(254))).toBe("must be 1-253 characters, got 254");
    expect(serviceNameProblem(" ")).toBe("must contain a visible character and no control characters");
    expect(serviceNameProblem("a\u0000")).toBe("must contain a visible character and no control characters");
    expect(serviceNameProblem("\u00a0x\u00a0")).toBeUndefined();
    expect(serviceNameProblem("a")).toBeUndefined();
  });
});
