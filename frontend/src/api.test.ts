import { afterEach, describe, expect, it, vi } from "vitest";
import { afterWrites, api, writtenSeq } from "./api";

describe("change events and this page's own operations", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("holds an event that arrives before its operation's answer until the caller has it", async () => {
    let answer: (r: Response) => void = () => undefined;
    vi.stubGlobal("fetch", () => new Promise<Response>((resolve) => { answer = resolve; }));
    const seen: string[] = [];
    const tagging = api<number>("/api/datasets/d/tag", { method: "POST", body: "{}" }).then((n) => {
      seen.push(`answer ${n}, seq ${writtenSeq()}`);
    });
    afterWrites(() => seen.push("event"));  // its event came first
    expect(seen).toEqual([]);
    answer(new Response("3", { headers: { "X-Visor-Seq": "7" } }));
    await tagging;
    expect(seen).toEqual(["answer 3, seq 7"]);
    await new Promise((r) => setTimeout(r, 5));
    expect(seen).toEqual(["answer 3, seq 7", "event"]);
  });

  it("passes events on at once when no operation is under way, reads included", async () => {
    vi.stubGlobal("fetch", async () => new Response("[]"));
    const seen: string[] = [];
    const reading = api("/api/datasets");
    afterWrites(() => seen.push("event"));
    expect(seen).toEqual(["event"]);
    await reading;
  });

  it("holds them after a failed operation too, then passes them on", async () => {
    vi.stubGlobal("fetch", async () => new Response(JSON.stringify({ error: { message: "no" } }), { status: 409 }));
    const seen: string[] = [];
    const failing = api("/api/datasets/d/tag", { method: "POST", body: "{}" }).catch((e: Error) => seen.push(e.message));
    afterWrites(() => seen.push("event"));
    await failing;
    await new Promise((r) => setTimeout(r, 5));
    expect(seen).toEqual(["no", "event"]);
  });
});
