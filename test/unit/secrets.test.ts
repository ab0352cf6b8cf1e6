import { describe, expect, it } from "vitest";
import { tokenFromSecret } from "../../lib/k8s/secrets.ts";
import { newToken } from "../../lib/p2p/token.ts";

const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("the token Secret", () => {
  const token = newToken();
  it("reads data (base64, as the API serves it) or stringData", () => {
    expect(tokenFromSecret({ data: { network_token: b64(token + "\n") } }, "ns", "s")).toEqual({ ok: true, token });
    expect(tokenFromSecret({ stringData: { network_token: token } }, "ns", "s")).toEqual({ ok: true, token });
  });

  it("a missing key and an empty value are told apart", () => {
    expect(tokenFromSecret({ data: { other: b64("x") } }, "ns", "s")).toMatchObject({
      ok: false,
      reason: "SecretKeyMissing",
      message: "Secret ns/s has no key network_token",
    });
    for (const secret of [{ data: { network_token: "" } }, { data: { network_token: b64("  \n") } }, { stringData: { network_token: "" } }])
      expect(tokenFromSecret(secret, "ns", "s")).toMatchObject({ ok: false, reason: "InvalidToken", message: "Secret ns/s key network_token is empty" });
  });

  it("a bad token names the Secret and the reason", () => {
    expect(tokenFromSecret({ data: { network_token: b64("entangle1.???") } }, "ns", "s")).toMatchObject({
      ok: false,
      reason: "InvalidToken",
      message: expect.stringMatching(/^Secret ns\/s key network_token: network token is malformed/),
    });
  });

  it("a token whose embedded peers cannot be dialed is refused here, not by every agent", () => {
    expect(tokenFromSecret({ stringData: { network_token: newToken(["127.0.0.1:0"]) } }, "ns", "s")).toMatchObject({
      ok: false,
      reason: "InvalidToken",
      message: expect.stringContaining("peer embedded in the network token"),
    });
  });
});
