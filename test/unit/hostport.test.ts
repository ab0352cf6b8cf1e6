// lib/hostport.ts: the one port parser and HOST:PORT formatter of the renderers, the CLI and the agent.
import { describe, expect, it } from "vitest";
import { formatHostPort, portNumber } from "../../lib/hostport.ts";

describe("portNumber", () => {
  it("1-65535 from a number or a decimal string with blanks around", () => {
    expect([portNumber(1), portNumber("65535"), portNumber(" 8080\t"), portNumber("00080")]).toEqual([1, 65535, 8080, 80]);
  });

  it("nothing else: out of range, signs, fractions, exponents, hex, junk before or after, other types", () => {
    for (const v of [
      0,
      65536,
      "0",
      "65536",
      "123456",
      "+80",
      "-80",
      "80.5",
      "80.0",
      "1e3",
      "0x1F",
      "a80",
      "80a",
      "8 0",
      "",
      " ",
      80.5,
      NaN,
      null,
      undefined,
      true,
      [80],
      { port: 80 },
    ])
      expect(portNumber(v), JSON.stringify(v)).toBeUndefined();
  });
});

describe("formatHostPort", () => {
  it("brackets IPv6 literals only", () => {
    expect(formatHostPort({ host: "fe80::1", port: 443 })).toBe("[fe80::1]:443");
    expect(formatHostPort({ host: "127.0.0.1", port: 1 })).toBe("127.0.0.1:1");
    expect(formatHostPort({ host: "a.b", port: 65535 })).toBe("a.b:65535");
  });
});
