// Unmodified @automerge/automerge-repo clients (WebSocket adapter) against the real fieldcheck server:
// the same validation, authorization and storage as the batch endpoint, live fan-out, device binding.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { rmSync } from "node:fs";

import WebSocket from "ws";

import {
  A,
  Api,
  assign,
  claimDevice,
  connectRepo,
  dispatched,
  eventually,
  recordView,
  handheld,
  setCheckResult,
  startServer,
  tempDir,
  urlOfHex,
} from "./fieldcheck.mjs";

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

/** The officer's index URL, as a new app discovers it. */
async function indexUrl(api) {
  return (await api.ok("GET", "/api/v1/sync/index")).index_url;
}

async function recordUrl(client, api, instruction) {
  const index = await client.find(await indexUrl(api));
  const entry = await eventually("the assignment in the index", () => index.doc()?.assignments?.[instruction]);
  return urlOfHex(entry.record_doc_id);
}

/** Answers the HTTP status the upgrade got (101 when it was accepted). */
function upgradeStatus(url) {
  return new Promise(resolve => {
    const socket = new WebSocket(url);
    socket.on("upgrade", () => {
      socket.close();
      resolve(101);
    });
    socket.on("unexpected-response", (_, response) => resolve(response.statusCode));
    socket.on("error", () => {});
  });
}

test("an unmodified repo finds the officer's index and record, and its check result reaches the supervisor", async () => {
  const instruction = await dispatched(server.base, ["officer1"]);
  const device = await claimDevice(server.base, "officer1", "demo-handheld-officer1");
  const client = connectRepo(server, device.api.token, device.deviceId);
  try {
    const handle = await client.find(await recordUrl(client, device.api, String(instruction)), device.actor);
    const item = handle.doc().instruction.checklist[0].item_id;
    setCheckResult(handle, item, "pass", "officer1");
    const view = await eventually("the result in the supervisor's view", async () => {
      const v = await recordView(server.base, instruction);
      return v.record.checks[item]?.result === "pass" && v;
    });
    assert.equal(view.record.checks[item].last_edit.by, "officer1");
    const after = await eventually("the instruction in progress", async () => {
      const v = await recordView(server.base, instruction);
      return v.state === "in_progress" && v;
    });
    assert.deepEqual(after.conflicts, []);
    assert.deepEqual(client.errors(), []);
  } finally {
    await client.close();
  }
});

test("a second officer's client sees the first one's edit live", async () => {
  const instruction = await dispatched(server.base, ["officer1", "officer2"]);
  const first = await claimDevice(server.base, "officer1", "demo-handheld-officer1");
  const second = await claimDevice(server.base, "officer2", "demo-handheld-officer2");
  const one = connectRepo(server, first.api.token, first.deviceId);
  const two = connectRepo(server, second.api.token, second.deviceId);
  try {
    const url = await recordUrl(one, first.api, String(instruction));
    assert.equal(await recordUrl(two, second.api, String(instruction)), url);
    const mine = await one.find(url, first.actor);
    const theirs = await two.find(url, second.actor);
    const item = mine.doc().instruction.checklist[1].item_id;
    setCheckResult(mine, item, "fail", "officer1");
    // Within a second or so: nothing but the server's fan-out brings it to the second client.
    await eventually("officer2's copy to show officer1's result", () => theirs.doc().checks[item]?.result?.toString() === "fail", 3_000);
    // And the other way round, for an edit made after both are connected.
    const other = mine.doc().instruction.checklist[2].item_id;
    setCheckResult(theirs, other, "not_applicable", "officer2");
    await eventually("officer1's copy to show officer2's result", () => mine.doc().checks[other]?.result?.toString() === "not_applicable", 3_000);
  } finally {
    await one.close();
    await two.close();
  }
});

test("changes that came in another way reach a connected client live: a batch sync and a new assignment", async () => {
  const instruction = await dispatched(server.base, ["officer1", "officer2"]);
  const device = await claimDevice(server.base, "officer1", "demo-handheld-officer1");
  const client = connectRepo(server, device.api.token, device.deviceId);
  const dir = tempDir();
  try {
    const index = await client.find(await indexUrl(device.api));
    const url = await recordUrl(client, device.api, String(instruction));
    const record = await client.find(url, device.actor);
    const item = record.doc().instruction.checklist[0].item_id;
    // officer2's reference handheld edits and syncs through the batch endpoint.
    handheld(dir, ["register", "--server", server.base, "--username", "officer2", "--password", "demo-password",
      "--device-id", "demo-handheld-officer2"]);
    handheld(dir, ["sync"]);
    handheld(dir, ["check", String(instruction), item, "fail"]);
    handheld(dir, ["sync"]);
    await eventually("the handheld's result on the JS client", () => record.doc().checks[item]?.result?.toString() === "fail", 3_000);
    // The server's own write: a new assignment lands in the connected officer's index.
    const next = await dispatched(server.base, ["officer1"]);
    await eventually("the new assignment in the index", () => index.doc().assignments?.[String(next)], 3_000);
  } finally {
    await client.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an edit to a server-owned field is refused with the rule named and nothing is stored", async () => {
  const instruction = await dispatched(server.base, ["officer1"]);
  const device = await claimDevice(server.base, "officer1", "demo-handheld-officer1");
  const client = connectRepo(server, device.api.token, device.deviceId);
  try {
    const handle = await client.find(await recordUrl(client, device.api, String(instruction)), device.actor);
    const before = await recordView(server.base, instruction);
    handle.change(doc => {
      doc.instruction.site = new A.ImmutableString("somewhere else");
    });
    const error = await eventually("an error message", () => client.errors()[0]);
    assert.match(error, /^server_owned_path: /);
    await eventually("the connection to close", () => client.closed());
    const afterwards = await recordView(server.base, instruction);
    assert.deepEqual(afterwards.heads, before.heads);
    assert.equal(afterwards.record.instruction.site, before.record.instruction.site);
  } finally {
    await client.close();
  }
});

test("an edit to a record the officer is no longer assigned to is refused with the rule named and nothing is stored", async () => {
  const instruction = await dispatched(server.base, ["officer1"]);
  const device = await claimDevice(server.base, "officer1", "demo-handheld-officer1");
  const client = connectRepo(server, device.api.token, device.deviceId);
  try {
    const handle = await client.find(await recordUrl(client, device.api, String(instruction)), device.actor);
    await assign(server.base, instruction, ["officer2"]);
    const before = await recordView(server.base, instruction);
    const item = handle.doc().instruction.checklist[0].item_id;
    setCheckResult(handle, item, "pass", "officer1");
    const error = await eventually("an error message", () => client.errors()[0]);
    assert.match(error, /^not_assigned: /);
    const afterwards = await recordView(server.base, instruction);
    assert.deepEqual(afterwards.heads, before.heads);
    assert.equal(afterwards.record.checks[item]?.result ?? null, null);
  } finally {
    await client.close();
  }
});

test("a record of another officer's instruction is unavailable, not revealed", async () => {
  const instruction = await dispatched(server.base, ["officer2"]);
  const owner = await claimDevice(server.base, "officer2", "demo-handheld-officer2");
  const ownerClient = connectRepo(server, owner.api.token, owner.deviceId);
  const url = await recordUrl(ownerClient, owner.api, String(instruction));
  await ownerClient.close();
  const device = await claimDevice(server.base, "officer1", "demo-handheld-officer1");
  const client = connectRepo(server, device.api.token, device.deviceId);
  try {
    await assert.rejects(client.repo.find(url), /unavailable/);
    assert.ok(client.frames.some(f => f.type === "doc-unavailable"));
  } finally {
    await client.close();
  }
});

test("a lost device is disconnected at once and its token cannot connect again", async () => {
  const officer = await Api.login(server.base, "officer1");
  const created = await officer.ok("POST", "/api/v1/devices", { name: "tablet to lose" });
  const device = await Api.login(server.base, "officer1", created.id);
  const client = connectRepo(server, device.token, created.id);
  try {
    await client.find(await indexUrl(device));
    await officer.ok("POST", `/api/v1/devices/${created.id}/status`, { status: "lost", reason: "left in a taxi" });
    const error = await eventually("the disconnection", () => client.errors()[0]);
    assert.match(error, /^device_status: /);
    assert.equal(await upgradeStatus(server.ws(device.token)), 401);
  } finally {
    await client.close();
  }
});

test("the upgrade refuses a missing token, a login without a device and a join as another device", async () => {
  assert.equal(await upgradeStatus(`${server.base.replace(/^http/, "ws")}/api/v1/sync/ws`), 400);
  const unbound = await Api.login(server.base, "officer1");
  assert.equal(await upgradeStatus(server.ws(unbound.token)), 403);
  const device = await Api.login(server.base, "officer1", "demo-handheld-officer1");
  assert.equal(await upgradeStatus(server.ws(device.token)), 101);
  const client = connectRepo(server, device.token, "demo-handheld-officer2");
  try {
    const error = await eventually("the refused join", () => client.errors()[0]);
    assert.match(error, /^join_sender_mismatch: /);
  } finally {
    await client.close();
  }
});

test("two copies of one device cannot both write: the retired copy's offline edit is refused cleanly", async () => {
  const instruction = await dispatched(server.base, ["officer2"]);
  // Copy A registers the device and downloads the record, then goes offline.
  const a = await claimDevice(server.base, "officer2", "demo-handheld-officer2");
  const clientA = connectRepo(server, a.api.token, a.deviceId);
  const url = await recordUrl(clientA, a.api, String(instruction));
  const handleA = await clientA.find(url, a.actor);
  const saved = A.save(handleA.doc());
  await clientA.close();
  // Copy B registers the same device id elsewhere: a new actor, A's actor retired, A's session ended.
  const b = await claimDevice(server.base, "officer2", "demo-handheld-officer2");
  assert.notEqual(b.actor, a.actor);
  assert.equal((await a.api.request("GET", "/api/v1/me")).status, 401);
  // Both edit offline; B syncs first.
  const offlineA = A.change(A.load(saved, a.actor), doc => {
    const check = doc.checks[doc.instruction.checklist[0].item_id];
    check.result = new A.ImmutableString("fail");
    check.by = new A.ImmutableString("officer2");
    check.at = Date.now();
  });
  const clientB = connectRepo(server, b.api.token, b.deviceId);
  const item = handleA.doc().instruction.checklist[0].item_id;
  try {
    const handleB = await clientB.find(url, b.actor);
    setCheckResult(handleB, item, "pass", "officer2");
    await eventually("B's edit stored", async () => (await recordView(server.base, instruction)).record.checks[item]?.result === "pass");
  } finally {
    await clientB.close();
  }
  // A logs in again and syncs its copy: refused with the rule named, nothing of it stored.
  const again = await Api.login(server.base, "officer2", a.deviceId);
  const retry = connectRepo(server, again.token, a.deviceId);
  try {
    const handle = retry.repo.import(A.save(offlineA), { docId: url.slice("automerge:".length) });
    assert.ok(handle);
    const error = await eventually("the refusal", () => retry.errors()[0]);
    assert.match(error, /^retired_actor: /);
    const view = await recordView(server.base, instruction);
    assert.equal(view.record.checks[item].result, "pass");
    assert.deepEqual(view.conflicts, []);
  } finally {
    await retry.close();
  }
});
