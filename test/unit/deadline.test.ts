import { afterEach, describe, expect, it, vi } from "vitest";
import { withDeadline } from "../../lib/p2p/deadline.ts";

afterEach(() => vi.useRealTimers());

describe("withDeadline", () => {
  it("aborts the operation's signal with a TimeoutError after the time given", async () => {
    vi.useFakeTimers();
    const run = withDeadline(1_000, (signal) => new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))));
    const failed = expect(run).rejects.toMatchObject({ name: "TimeoutError" });
    await vi.advanceTimersByTimeAsync(1_000);
    await failed;
  });

  it("leaves no timer once the operation ended, whether it succeeded or failed", async () => {
    vi.useFakeTimers();
    await expect(withDeadline(1_000, async () => 42)).resolves.toBe(42);
    await expect(withDeadline(1_000, async () => Promise.reject(new Error("refused")))).rejects.toThrow("refused");
    expect(vi.getTimerCount()).toBe(0);
  });
});
