// The controller's decisions at scale: no write for an unchanged object (lib/k8s/unchanged.ts),
// no reconcile for a watch event that cannot change anything (lib/controller/memory.ts), one
// reconcile for a burst of events (coalesce in lib/controller/serialize.ts).
import { afterEach, describe, expect, it, vi } from "vitest";
import { APPLIED_HASH, contains, needsApply, withAppliedHash } from "../../lib/k8s/unchanged.ts";
import { ControllerMemory, deploymentMatters, deploymentView, isEcho, newSpec, podMatters, type Outcome } from "../../lib/controller/memory.ts";
import { burstGate, coalesce, limiter } from "../../lib/controller/serialize.ts";

interface Dep {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; labels: Record<string, string>; annotations?: Record<string, string> };
  spec: { replicas: number; strategy?: { type: string }; template: { spec: { containers: Record<string, unknown>[] } } };
  [field: string]: unknown;
}

const desired = (): Dep => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "entangle-a", namespace: "ns", labels: { app: "a" } },
  spec: { replicas: 1, template: { spec: { containers: [{ name: "agent", image: "img:1", args: ["agent", "expose"] }] } } },
});

/** What the API server returns for it: defaults, status and metadata added. */
function asServed(obj: Dep): Dep {
  const copy = structuredClone(obj);
  Object.assign(copy.metadata, { uid: "u1", resourceVersion: "42", generation: 3, managedFields: [{ manager: "pepr" }] });
  Object.assign(copy.spec, { revisionHistoryLimit: 10, progressDeadlineSeconds: 600 });
  Object.assign(copy.spec.template.spec.containers[0], { imagePullPolicy: "IfNotPresent", terminationMessagePath: "/dev/termination-log" });
  copy.status = { replicas: 1 };
  return copy;
}

describe("needsApply: a write only when something changed", () => {
  it("an object as the API server returns it (defaults, status added) needs no write", () => {
    const want = withAppliedHash(desired());
    expect(needsApply(want, asServed(want))).toBe(false);
  });

  it("absent, or applied before this hash existed: written", () => {
    const want = withAppliedHash(desired());
    expect(needsApply(want, undefined)).toBe(true);
    expect(needsApply(want, asServed(desired()))).toBe(true);
  });

  it("a changed rendering is written, a field removed included (only the hash tells)", () => {
    const before = withAppliedHash({ ...desired(), spec: { ...desired().spec, strategy: { type: "Recreate" } } });
    const after = withAppliedHash(desired());
    expect(after.metadata.annotations![APPLIED_HASH]).not.toBe(before.metadata.annotations![APPLIED_HASH]);
    // every field of `after` but its hash is in what `before` made: without the hash, no write
    expect(contains(asServed(before), { ...after, metadata: { ...after.metadata, annotations: undefined } })).toBe(true);
    expect(needsApply(after, asServed(before))).toBe(true);
  });

  it("drift in a field we set is restored; a field someone else added is left alone", () => {
    const want = withAppliedHash(desired());
    const edited = asServed(want);
    edited.spec.template.spec.containers[0] = { ...edited.spec.template.spec.containers[0], image: "other:2" };
    expect(needsApply(want, edited)).toBe(true);
    const added = asServed(want);
    added.metadata.labels = { app: "a", extra: "x" };
    expect(needsApply(want, added)).toBe(false);
  });

  it("the hash is stable whatever the key order, and ignores a hash already present", () => {
    const a = withAppliedHash(desired());
    const { spec, metadata, kind, apiVersion } = desired();
    const b = withAppliedHash<Dep>({ spec, kind, metadata, apiVersion });
    expect(b.metadata.annotations![APPLIED_HASH]).toBe(a.metadata.annotations![APPLIED_HASH]);
    expect(withAppliedHash(a).metadata.annotations![APPLIED_HASH]).toBe(a.metadata.annotations![APPLIED_HASH]);
    const annotated = withAppliedHash<Dep>({ ...desired(), metadata: { ...desired().metadata, annotations: { note: "x" } } });
    expect(annotated.metadata.annotations).toMatchObject({ note: "x" });
    expect(annotated.metadata.annotations![APPLIED_HASH]).not.toBe(a.metadata.annotations![APPLIED_HASH]);
  });

  it("contains: lists must match in length and order, scalars exactly", () => {
    expect(contains({ a: [1, 2] }, { a: [1, 2] })).toBe(true);
    expect(contains({ a: [1, 2, 3] }, { a: [1, 2] })).toBe(false);
    expect(contains({ a: [2, 1] }, { a: [1, 2] })).toBe(false);
    expect(contains({ a: "80" }, { a: 80 })).toBe(false);
    expect(contains({ a: { b: 1 } }, { a: [] })).toBe(false);
    expect(contains({}, { a: undefined })).toBe(true);
    expect(contains({ a: 1 }, { a: null })).toBe(false);
  });
});

describe("ControllerMemory: which watch events need a reconcile", () => {
  const outcome: Outcome = { deploymentGeneration: 1, readyReplicas: 0, available: false, failed: false, resourceVersion: "7" };

  it("Deployment events: only a new generation or a change of availability", () => {
    const dep = (generation: number, ready?: number, available?: string) => ({
      metadata: { generation },
      status: { readyReplicas: ready, conditions: available ? [{ type: "Available", status: available }] : undefined },
    });
    expect(deploymentMatters(outcome, deploymentView(dep(1)))).toBe(false);
    expect(deploymentMatters(outcome, deploymentView(dep(1, 0, "False")))).toBe(false);
    expect(deploymentMatters(outcome, deploymentView(dep(2)))).toBe(true);
    expect(deploymentMatters(outcome, deploymentView(dep(1, 1)))).toBe(true);
    expect(deploymentMatters(outcome, deploymentView(dep(1, 0, "True")))).toBe(true);
    expect(deploymentMatters(undefined, deploymentView(dep(1)))).toBe(true);
  });

  it("Pod events: a failed pod, or any pod once a failure was reported", () => {
    expect(podMatters(outcome, false)).toBe(false);
    expect(podMatters(outcome, true)).toBe(true);
    expect(podMatters({ ...outcome, failed: true }, false)).toBe(true);
    expect(podMatters(undefined, false)).toBe(true);
  });

  it("an Entanglement event is an echo only at the resourceVersion last written or read", () => {
    expect(isEcho(outcome, "7")).toBe(true);
    expect(isEcho(outcome, "8")).toBe(false);
    expect(isEcho(outcome, undefined)).toBe(false);
    expect(isEcho({ ...outcome, resourceVersion: undefined }, undefined)).toBe(false);
    expect(isEcho(undefined, "7")).toBe(false);
  });

  it("finds users of a Secret or Service and owners of an agent by namespace, and forgets", () => {
    const m = new ControllerMemory();
    m.note("a", "x", { secretRef: "s", instance: "x" });
    m.note("a", "y", { secretRef: "s", serviceRef: "web", instance: "y" });
    m.note("ab", "z", { secretRef: "s", instance: "z" });
    expect(m.users("a", (l) => l.secretRef === "s").sort()).toEqual(["x", "y"]);
    expect(m.users("a", (l) => l.serviceRef === "web")).toEqual(["y"]);
    expect(m.owners("ab", "z")).toEqual(["z"]);
    m.record("a", "x", outcome);
    expect(m.outcome("a", "x")).toEqual(outcome);
    m.unrecord("a", "x");
    expect(m.outcome("a", "x")).toBeUndefined();
    m.record("a", "y", outcome);
    m.forget("a", "y");
    expect(m.outcome("a", "y")).toBeUndefined();
    expect(m.users("a", () => true)).toEqual(["x"]);
    expect(m.size).toBe(2);
  });
});

describe("coalesce: a burst of events for one object, one run", () => {
  it("runs asked for while one waits join it; one asked for during a run runs after it", async () => {
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = coalesce("k", async () => {
      order.push("first");
      await gate;
    });
    await Promise.resolve();
    await Promise.resolve();
    // `first` is running: these wait, and join each other
    const second = coalesce("k", async () => void order.push("second"));
    const third = coalesce("k", async () => void order.push("third"));
    expect(third).toBe(second);
    const other = coalesce("other", async () => void order.push("other"));
    release();
    await Promise.all([first, second, third, other]);
    expect(order).toEqual(["first", "other", "second"]);
  });

  it("a run waiting for a free slot of its pool is still joined by the runs asked for meanwhile", async () => {
    const pool = limiter(1);
    let release!: () => void;
    const busy = pool(() => new Promise<void>((r) => (release = r)));
    const order: string[] = [];
    const first = coalesce("g", async () => void order.push("first"), pool);
    await new Promise((r) => setTimeout(r, 5));
    // `first` has not started (the pool is full): this one joins it
    const second = coalesce("g", async () => void order.push("second"), pool);
    expect(second).toBe(first);
    release();
    await Promise.all([busy, first, second]);
    expect(order).toEqual(["first"]);
  });
});

describe("newSpec: what makes a burst", () => {
  it("a new Entanglement or a new generation does; a status write's echo and a reconcile by name do not", () => {
    expect(newSpec({ metadata: { resourceVersion: "5", generation: 1 } }, undefined)).toBe(true);
    expect(newSpec({ metadata: { resourceVersion: "9", generation: 2 } }, 1)).toBe(true);
    expect(newSpec({ metadata: { resourceVersion: "7", generation: 1 } }, 1)).toBe(false);
    expect(newSpec({ metadata: {} }, undefined)).toBe(false);
  });
});

describe("burstGate: reconciles wait for a bulk apply to end", () => {
  afterEach(() => vi.useRealTimers());
  /** what has started, after the fake clock moved to `ms` */
  const at = async (ms: number) => {
    await vi.advanceTimersByTimeAsync(ms - Date.now());
  };

  it("isolated requests run at once; in a burst, runs wait until it has been quiet for quietMs", async () => {
    vi.useFakeTimers({ now: 0 });
    const { arrived, gate } = burstGate({ count: 3, windowMs: 1000, quietMs: 500, now: () => Date.now() }, 10_000);
    const started: string[] = [];
    const ask = (name: string) => {
      arrived();
      void gate(async () => void started.push(name));
    };
    ask("alone");
    await at(600);
    ask("alone too"); // two within the window are no burst yet
    await at(601);
    expect(started).toEqual(["alone", "alone too"]);
    await at(5000);
    ask("a");
    await at(5010);
    ask("b"); // the first two of a burst cannot know they are one
    await at(5020);
    ask("c");
    await at(5400);
    ask("d"); // a pause shorter than quietMs does not end it
    await at(5899); // 499 ms after the last
    expect(started).toEqual(["alone", "alone too", "a", "b"]);
    await at(5900);
    expect(started).toEqual(["alone", "alone too", "a", "b", "c", "d"]);
    await at(9000);
    ask("later, alone");
    await at(9001);
    expect(started.at(-1)).toBe("later, alone");
  });

  it("a burst that goes on holds a run for maxWaitMs at most", async () => {
    vi.useFakeTimers({ now: 0 });
    const { arrived, gate } = burstGate({ count: 3, windowMs: 1000, quietMs: 200, now: () => Date.now() }, 1000);
    const started: number[] = [];
    for (let t = 10; t <= 3000; t += 10) {
      await at(t);
      arrived();
      void gate(async () => void started.push(t));
    }
    // every run asked for at t (from the third on) started at t + 1000: the burst never paused
    expect(started).toEqual(expect.arrayContaining([10, 20, 30, 1990, 2000]));
    expect(started).not.toContain(2010);
  });
});

describe("limiter: a bounded pool of runs", () => {
  it("runs at most max at a time, the rest in the order asked, and frees a slot when a run fails", async () => {
    const limit = limiter(2);
    let active = 0;
    let most = 0;
    const started: number[] = [];
    const gates: (() => void)[] = [];
    const runs = [0, 1, 2, 3, 4].map((i) =>
      limit(async () => {
        started.push(i);
        active++;
        most = Math.max(most, active);
        await new Promise<void>((open) => gates.push(open));
        active--;
        if (i === 0) throw new Error("boom");
        return i;
      }),
    );
    const settled = Promise.allSettled(runs);
    for (let opened = 0; opened < 5; opened++) {
      await new Promise((r) => setTimeout(r, 5));
      gates.shift()!();
    }
    const results = await settled;
    expect(most).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(results[0].status).toBe("rejected");
    expect(results.slice(1).map((r) => (r as PromiseFulfilledResult<number>).value)).toEqual([1, 2, 3, 4]);
  });
});
