// The WebSocket fleet benchmark: N unmodified automerge-repo clients (spread over worker threads, each
// its own V8 heap) sync R assigned records each through GET /api/v1/sync/ws, in three offline sessions,
// against the real release server. Prints records/s, server CPU seconds per 1,000 records and peak RSS.
//
//   cargo build --release --workspace --bins
//   node tests/js/bench.mjs [CLIENTS=20] [RECORDS=10] [WORKERS=4]
//
// Each record: every checklist item's result (13 for the frozen-fish checklist), 5 photo references
// and a verdict with completion, one change per officer action, spread over three sessions (edit
// offline, connect, sync, wait until the server reports it stored everything, disconnect). A record
// counts when its third session is stored. FIELDCHECK_BIN picks another server binary.

import { readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { createHash } from "node:crypto";

import { Repo, cbor } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";

import { A, Api, exportContent, eventually, startServer, storedOnServer, urlOfHex } from "./fieldcheck.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const SESSIONS = 3;
const PHOTOS = 5;

if (isMainThread) {
  await main();
} else {
  parentPort.postMessage(await runClients(workerData));
}

async function main() {
  const [clients = 20, records = 10, workers = 4] = process.argv.slice(2).map(Number);
  process.env.FIELDCHECK_BIN ??= join(here, "..", "..", "target", "release", "fieldcheck");
  const server = await startServer();
  try {
    const setupStart = Date.now();
    const fleet = await setUp(server, clients, records);
    console.error(`set up ${clients} clients × ${records} records in ${((Date.now() - setupStart) / 1000).toFixed(1)} s`);
    const cpuBefore = cpuSeconds(server.pid);
    const start = process.hrtime.bigint();
    const slices = Array.from({ length: workers }, (_, w) => fleet.filter((_, i) => i % workers === w)).filter(s => s.length);
    const results = await Promise.all(
      slices.map(
        slice =>
          new Promise((resolve, reject) => {
            const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { base: server.base, clients: slice } });
            worker.once("message", resolve);
            worker.once("error", reject);
          }),
      ),
    );
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const cpu = cpuSeconds(server.pid) - cpuBefore;
    const rss = peakRssMiB(server.pid);
    const total = clients * records;
    const refused = results.flatMap(r => r.errors);
    const stored = await verify(server, fleet);
    console.log(`fleet: ${clients} clients × ${records} records × ${SESSIONS} sessions, ${slices.length} worker threads`);
    console.log(`records/s: ${(total / seconds).toFixed(1)} (${total} records in ${seconds.toFixed(1)} s)`);
    console.log(`server CPU: ${cpu.toFixed(2)} s, ${((cpu / total) * 1000).toFixed(2)} s per 1,000 records`);
    console.log(`server peak RSS: ${rss.toFixed(0)} MiB`);
    console.log(`session p50 / p99: ${percentile(results.flatMap(r => r.sessionMs), 50)} / ${percentile(results.flatMap(r => r.sessionMs), 99)} ms`);
    console.log(`records fully stored on the server: ${stored} of ${total}; refusals: ${refused.length}`);
    if (refused.length || stored !== total) {
      console.log(refused.slice(0, 5).join("\n"));
      process.exitCode = 1;
    }
  } finally {
    await server.stop();
  }
}

/** Officers with a registered device each, and `records` instructions assigned to each. */
async function setUp(server, clients, records) {
  const admin = await Api.login(server.base, "admin");
  const operator = await Api.login(server.base, "ent1-operator");
  const reviewer = await Api.login(server.base, "reviewer1");
  const supervisor = await Api.login(server.base, "supervisor1");
  const fleet = [];
  for (let n = 0; n < clients; n++) {
    const username = `bench-officer${n}`;
    const user = await admin.ok("POST", "/api/v1/admin/users", {
      username, display_name: username, password: "demo-password", role: "officer", unit_code: "2201",
    });
    const plain = await Api.login(server.base, username);
    const device = await plain.ok("POST", "/api/v1/devices", { name: `bench handheld ${n}` });
    const apps = [];
    for (let r = 0; r < records; r++) {
      const app = await operator.ok("POST", "/api/v1/applications", exportContent());
      await operator.ok("POST", `/api/v1/applications/${app.id}/submit`, {});
      apps.push(app.id);
    }
    await reviewer.ok("POST", "/api/v1/reviews", { application_ids: apps, action: "approve" });
    const issued = await supervisor.ok("GET", "/api/v1/instructions?state=issued&limit=500");
    for (const i of issued) await supervisor.ok("POST", `/api/v1/instructions/${i.id}/assign`, { officer_ids: [user.id] });
    const bound = await Api.login(server.base, username, device.id);
    const index = await bound.ok("GET", "/api/v1/sync/index");
    fleet.push({ username, deviceId: device.id, actor: device.actor_id, token: bound.token, indexUrl: index.index_url, instructions: issued.map(i => String(i.id)) });
  }
  return fleet;
}

async function runClients({ base, clients }) {
  const ws = token => `${base.replace(/^http/, "ws")}/api/v1/sync/ws?token=${encodeURIComponent(token)}`;
  const errors = [];
  const sessionMs = [];
  await Promise.all(clients.map(client => runClient(client, ws(client.token), errors, sessionMs)));
  return { errors, sessionMs };
}

/** One handheld: three sessions of offline edits followed by a sync. */
async function runClient(client, url, errors, sessionMs) {
  let docs = new Map(); // url -> saved bytes between sessions
  for (let session = 0; session < SESSIONS; session++) {
    const started = Date.now();
    const adapter = new WebSocketClientAdapter(url, 600_000);
    const repo = new Repo({ network: [adapter], peerId: client.deviceId });
    // The adapter only logs the server's `error` (a refusal, then the socket closes): stop waiting on one.
    let refusal = null;
    const receive = adapter.receiveMessage.bind(adapter);
    adapter.receiveMessage = bytes => {
      const message = cbor.decode(new Uint8Array(bytes));
      if (message.type === "error") refusal = message.message;
      return receive(bytes);
    };
    // The adapter declares itself ready after a second even without the server's `peer`; a busy server
    // may answer later, and a find before that would report the document unavailable.
    await eventually("the server's peer message", () => repo.peers.length > 0, 120_000);
    let handles;
    if (session === 0) {
      const index = await repo.find(client.indexUrl);
      const assignments = index.doc().assignments;
      handles = await Promise.all(
        client.instructions.map(async i => {
          const handle = await repo.find(urlOfHex(assignments[i].record_doc_id));
          handle.update(doc => A.clone(doc, client.actor));
          return handle;
        }),
      );
    } else {
      handles = [...docs].map(([docUrl, bytes]) => {
        // An imported document gets a random actor: back to the device's, as after `find`.
        const handle = repo.import(bytes, { docId: docUrl.slice("automerge:".length) });
        handle.update(doc => A.clone(doc, client.actor));
        return handle;
      });
    }
    for (const handle of handles) edit(handle, session, client.username);
    try {
      await eventually(`client ${client.username} session ${session} stored`, () => refusal || handles.every(h => storedOnServer(repo, h)), Number(process.env.BENCH_SESSION_TIMEOUT_MS ?? 600_000));
      if (refusal) errors.push(`${client.username} session ${session}: ${refusal}`);
    } catch (e) {
      errors.push(`${client.username}: ${e.message}`);
    }
    sessionMs.push(Date.now() - started);
    docs = new Map(handles.map(h => [h.url, A.save(h.doc())]));
    await repo.shutdown();
  }
}

/** One session's officer actions on a record, one change each (as docs/sync-protocol.md asks). */
function edit(handle, session, officer) {
  const items = handle.doc().instruction.checklist.map(c => String(c.item_id));
  const third = Math.ceil(items.length / SESSIONS);
  const stamp = entry => {
    for (const key of ["by", "at"]) if (key in entry) delete entry[key];
    entry.by = new A.ImmutableString(officer);
    entry.at = Date.now();
  };
  for (const item of items.slice(session * third, (session + 1) * third)) {
    handle.change(doc => {
      const check = doc.checks[item];
      if ("result" in check) delete check.result;
      check.result = new A.ImmutableString("pass");
      stamp(check);
    });
  }
  if (session === 1) {
    for (let p = 0; p < PHOTOS; p++) {
      const sha = createHash("sha256").update(`${handle.url} photo ${p}`).digest("hex");
      handle.change(doc => {
        // Created empty, then filled: automerge-js cannot create a map from a literal holding ImmutableStrings.
        doc.photos[sha] = {};
        const photo = doc.photos[sha];
        photo.check_item = new A.ImmutableString(items[p % items.length]);
        photo.caption = new A.ImmutableString(`photo ${p}`);
        photo.taken_at = Date.now();
        stamp(photo);
      });
    }
  }
  if (session === SESSIONS - 1) {
    handle.change(doc => {
      doc.verdict.value = new A.ImmutableString("conforming");
      stamp(doc.verdict);
    });
    handle.change(doc => {
      doc.completion.complete = true;
      stamp(doc.completion);
    });
  }
}

/** How many records the server holds complete: every check, the photos and the verdict. */
async function verify(server, fleet) {
  const supervisor = await Api.login(server.base, "supervisor1");
  let stored = 0;
  for (const client of fleet) {
    for (const i of client.instructions) {
      const view = await supervisor.ok("GET", `/api/v1/instructions/${i}/record`);
      const checks = Object.values(view.record.checks);
      if (checks.every(c => c.result === "pass") && Object.keys(view.record.photos).length === PHOTOS && view.record.verdict) stored++;
    }
  }
  return stored;
}

function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  // utime and stime (fields 14 and 15 of stat), in clock ticks of 1/100 s on Linux.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function peakRssMiB(pid) {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find(l => l.startsWith("VmHWM:"));
  return Number(line.split(/\s+/)[1]) / 1024;
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}
