// `pepr build` leaves pepr's own dependencies and @kubernetes/client-node out of the module
// bundle: in-cluster, the module loads them from Pepr's controller image, where they are at the
// versions pepr pins. Where our code imports one of them, our pinned version must be that same
// version, or the module runs code we never tested (or, nested out of reach, fails to load).
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";

const pkg = (path: string) => JSON.parse(readFileSync(new URL(`../../${path}`, import.meta.url), "utf8"));

it("dependencies shared with pepr's controller image are pinned to the image's versions", () => {
  const ours: Record<string, string> = pkg("package.json").dependencies;
  const pepr: Record<string, string> = pkg("node_modules/pepr/package.json").dependencies;
  const kfc: Record<string, string> = pkg("node_modules/kubernetes-fluent-client/package.json").dependencies;
  const image: Record<string, string> = { ...pepr, "@kubernetes/client-node": kfc["@kubernetes/client-node"] };
  const shared = Object.keys(ours).filter((name) => name in image);
  expect(shared).toContain("@kubernetes/client-node");
  expect(shared).toContain("pino");
  for (const name of shared) expect(`${name}@${ours[name]}`).toBe(`${name}@${image[name]}`);
});
