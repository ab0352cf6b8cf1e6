// The Entanglement controller's informer-style caches (issue 11): lib/controller/caches.ts.
import { describe, expect, it } from "vitest";
import { AgentPods, InFlight, ListedNamespaces, ObjectCache, notOlder, usableCopy, withoutManagedFields } from "../../lib/controller/caches.ts";
import { agentFailure } from "../../lib/controller/agent-failure.ts";
import { outcomeOf, secretNotFound } from "../../lib/k8s/secrets.ts";
import { AGENT_CONTAINER } from "../../lib/render/agent.ts";

const v = (resourceVersion?: string, extra: Record<string, unknown> = {}) => ({ metadata: { resourceVersion }, ...extra });

describe("notOlder", () => {
  it("refuses only an integer resourceVersion lower than the cached one", () => {
    expect(notOlder(v("9"), v("10"))).toBe(false);
    expect(notOlder(v("10"), v("10"))).toBe(true);
    expect(notOlder(v("11"), v("10"))).toBe(true);
    // beyond 2^53: compared exactly
    expect(notOlder(v("9007199254740993"), v("9007199254740992"))).toBe(true);
    expect(notOlder(v("9007199254740992"), v("9007199254740993"))).toBe(false);
    // opaque or missing versions: the latest arrival wins
    expect(notOlder(v("a"), v("10"))).toBe(true);
    expect(notOlder(v(undefined), v("10"))).toBe(true);
    expect(notOlder(v("1"), undefined)).toBe(true);
  });
});

describe("withoutManagedFields", () => {
  it("drops metadata.managedFields from a copy, leaving the object it was given alone", () => {
    const obj = { metadata: { name: "a", resourceVersion: "3", managedFields: [{ manager: "m" }] }, spec: { x: 1 } };
    expect(withoutManagedFields(obj)).toEqual({ metadata: { name: "a", resourceVersion: "3" }, spec: { x: 1 } });
    expect(obj.metadata.managedFields).toEqual([{ manager: "m" }]);
    const bare = { metadata: { name: "b", resourceVersion: "1" } };
    expect(withoutManagedFields(bare)).toBe(bare);
  });

  it("is what the cache keeps, from watch events and from reads", () => {
    const c = new ObjectCache<{ metadata?: { resourceVersion?: string; managedFields?: unknown } }>();
    c.observe("ns/a", { metadata: { resourceVersion: "1", managedFields: [] } });
    c.fill("ns/b", { metadata: { resourceVersion: "1", managedFields: [] } });
    expect(c.get("ns/a")).toEqual({ metadata: { resourceVersion: "1" } });
    expect(c.get("ns/b")).toEqual({ metadata: { resourceVersion: "1" } });
  });
});

describe("usableCopy", () => {
  it("takes a whole copy not older than our last write to it", () => {
    const copy = (resourceVersion?: string) => ({ metadata: { resourceVersion }, spec: {} });
    expect(usableCopy(copy("5"), undefined)).toBe(true);
    expect(usableCopy(copy("5"), "5")).toBe(true);
    expect(usableCopy(copy("6"), "5")).toBe(true);
    // our status write came after this copy: its status.applied is stale
    expect(usableCopy(copy("4"), "5")).toBe(false);
    // a retry by name carries neither a version nor a spec
    expect(usableCopy(copy(undefined), undefined)).toBe(false);
    expect(usableCopy({ metadata: { resourceVersion: "5" } }, undefined)).toBe(false);
  });
});

describe("ObjectCache", () => {
  it("never seen, known absent and known present are three states", () => {
    const c = new ObjectCache<{ metadata?: { resourceVersion?: string } }>();
    expect(c.known("ns/a")).toBe(false);
    c.fill("ns/a", null);
    expect(c.known("ns/a")).toBe(true);
    expect(c.get("ns/a")).toBeUndefined();
    c.observe("ns/a", v("3"));
    expect(c.get("ns/a")).toEqual(v("3"));
    c.absent("ns/a");
    expect(c.known("ns/a")).toBe(true);
    expect(c.get("ns/a")).toBeUndefined();
    c.forget("ns/a");
    expect(c.known("ns/a")).toBe(false);
  });

  it("a watch event older than our write's answer does not replace it", () => {
    const c = new ObjectCache<{ metadata?: { resourceVersion?: string }; n?: number }>();
    c.observe("ns/a", v("5", { n: 1 }));
    c.observe("ns/a", v("4", { n: 2 }));
    expect(c.get("ns/a")).toEqual(v("5", { n: 1 }));
    c.observe("ns/a", v("6", { n: 3 }));
    expect(c.get("ns/a")).toEqual(v("6", { n: 3 }));
  });

  it("a read's answer does not replace what a watch event brought meanwhile", () => {
    const c = new ObjectCache<{ metadata?: { resourceVersion?: string } }>();
    c.observe("ns/a", v("7"));
    c.fill("ns/a", null);
    expect(c.get("ns/a")).toEqual(v("7"));
    c.fill("ns/b", v("2"));
    expect(c.get("ns/b")).toEqual(v("2"));
  });
});

describe("InFlight", () => {
  it("concurrent reads of one key share one request; the next one reads again", async () => {
    const f = new InFlight();
    let calls = 0;
    const read = async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 5));
      return calls;
    };
    const [a, b] = await Promise.all([f.run("k", read), f.run("k", read)]);
    expect([a, b, calls]).toEqual([1, 1, 1]);
    await f.run("other", read);
    expect(calls).toBe(2);
    expect(await f.run("k", read)).toBe(3);
  });

  it("a failed read is not kept", async () => {
    const f = new InFlight();
    await expect(f.run("k", () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await f.run("k", async () => 1)).toBe(1);
  });
});

const failedPod = (name: string, created: string, resourceVersion = "1") => ({
  metadata: { name, creationTimestamp: created, resourceVersion },
  status: { containerStatuses: [{ name: AGENT_CONTAINER, state: { terminated: { exitCode: 1, reason: "Error", message: "bad token" } } }] },
});
const runningPod = (name: string, created: string, resourceVersion = "1") => ({
  metadata: { name, creationTimestamp: created, resourceVersion },
  status: { containerStatuses: [{ name: AGENT_CONTAINER, state: { running: {} } }] },
});

describe("AgentPods", () => {
  it("keeps each instance's pods apart, and what agentFailure needs of them", () => {
    const p = new AgentPods();
    p.observe("ns", "entangle-a", failedPod("a-1", "2026-01-01T00:00:00Z"));
    p.observe("ns", "entangle-b", runningPod("b-1", "2026-01-01T00:00:00Z"));
    expect(agentFailure(p.of("ns", "entangle-a"))).toMatchObject({ reason: "AgentFailed", pod: "a-1" });
    expect(agentFailure(p.of("ns", "entangle-b"))).toBeUndefined();
    expect(p.of("other", "entangle-a")).toEqual([]);
  });

  it("a pod deleted or recovered takes its failure with it", () => {
    const p = new AgentPods();
    p.observe("ns", "i", failedPod("p1", "2026-01-01T00:00:00Z", "1"));
    p.observe("ns", "i", runningPod("p1", "2026-01-01T00:00:00Z", "2"));
    expect(agentFailure(p.of("ns", "i"))).toBeUndefined();
    p.observe("ns", "i", failedPod("p2", "2026-01-01T00:01:00Z"));
    expect(agentFailure(p.of("ns", "i"))).toMatchObject({ pod: "p2" });
    p.gone("ns", "i", "p2");
    expect(agentFailure(p.of("ns", "i"))).toBeUndefined();
    p.gone("ns", "i", "p1");
    p.gone("ns", "i", "never-seen");
    expect(p.of("ns", "i")).toEqual([]);
  });

  it("a namespace is complete once listed; a list does not undo a newer watch event", () => {
    const p = new AgentPods();
    p.observe("ns", "i", runningPod("p1", "2026-01-01T00:00:00Z", "5"));
    expect(p.complete("ns")).toBe(false);
    p.listed("ns", [
      { instance: "i", pod: failedPod("p1", "2026-01-01T00:00:00Z", "4") },
      { instance: "j", pod: failedPod("q1", "2026-01-01T00:00:00Z", "4") },
    ]);
    expect(p.complete("ns")).toBe(true);
    expect(p.complete("other")).toBe(false);
    expect(agentFailure(p.of("ns", "i"))).toBeUndefined();
    expect(agentFailure(p.of("ns", "j"))).toMatchObject({ pod: "q1" });
  });

  it("a list does not undo a watch event when versions cannot be compared", () => {
    const p = new AgentPods();
    p.observe("ns", "i", runningPod("p1", "2026-01-01T00:00:00Z", "opaque-new"));
    p.listed("ns", [{ instance: "i", pod: failedPod("p1", "2026-01-01T00:00:00Z", "opaque-old") }]);
    expect(agentFailure(p.of("ns", "i"))).toBeUndefined();
  });
});

describe("token Secret outcomes", () => {
  it("keep no token", () => {
    expect(outcomeOf({ ok: true, token: "entangle1.secret" })).toEqual({ ok: true });
    const missing = secretNotFound("ns", "s");
    expect(outcomeOf({ ...missing, ok: false } as never)).toEqual({ ok: false, reason: "SecretNotFound", message: "Secret ns/s not found" });
  });
});

describe("ListedNamespaces", () => {
  it("lists only once the watch runs; follows a namespace from its list on, complete once listed", () => {
    const n = new ListedNamespaces();
    expect(n.canList()).toBe(false);
    n.watching();
    expect(n.canList()).toBe(true);
    expect(n.follows("a")).toBe(false);
    n.listing("a");
    // a deletion reported while the list is in flight is kept
    expect(n.follows("a")).toBe(true);
    expect(n.complete("a")).toBe(false);
    n.listed("a");
    expect(n.complete("a")).toBe(true);
    n.failed("a");
    expect(n.follows("a")).toBe(true);
    expect(n.complete("b")).toBe(false);
  });

  it("forgets a namespace whose list failed", () => {
    const n = new ListedNamespaces();
    n.listing("a");
    n.failed("a");
    expect(n.follows("a")).toBe(false);
    expect(n.complete("a")).toBe(false);
  });
});
