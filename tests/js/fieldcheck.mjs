// The interop suite's test kit: the real `fieldcheck` binary on port 0 with its own data dir and demo
// data (as tests/src/lib.rs starts it), its REST API, and unmodified automerge-repo clients.
//
// Layout:
// - startServer(): spawns `fieldcheck serve --demo`, waits for its "listening on" line.
// - Api: login (optionally device-bound) and JSON requests.
// - dispatched(): files, approves and assigns one instruction, as tests/src/field.rs does.
// - connectRepo(): a Repo with the WebSocket adapter, joined as the device, writing as its actor.
// - eventually(): waits for a condition with a deadline (never a fixed sleep).

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

import * as A from "@automerge/automerge";
import { Repo, cbor, stringifyAutomergeUrl } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

function binary() {
  if (process.env.FIELDCHECK_BIN) return process.env.FIELDCHECK_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? join(root, "target");
  return join(target, "debug", "fieldcheck");
}

/** Runs the reference `handheld` client (the batch endpoint) with its own store; answers its stdout. */
export function handheld(dir, args) {
  const bin = join(dirname(binary()), "handheld");
  const out = spawnSync(bin, ["--dir", dir, ...args], { encoding: "utf8", env: { ...process.env, RUST_LOG: "warn" } });
  if (out.status !== 0) throw new Error(`handheld ${args.join(" ")}: ${out.status}\n${out.stdout}\n${out.stderr}`);
  return out.stdout;
}

export const tempDir = () => mkdtempSync(join(tmpdir(), "fieldcheck-handheld-"));

export async function startServer() {
  const dataDir = mkdtempSync(join(tmpdir(), "fieldcheck-js-"));
  const bin = binary();
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run cargo build --workspace --bins first`);
  const child = spawn(bin, ["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir", dataDir], {
    env: {
      ...process.env,
      FIELDCHECK__DEMO__FIXTURES_DIR: join(root, "fixtures"),
      FIELDCHECK__TESTING__MANUAL_CLOCK: "true",
      FIELDCHECK__AUTH__ARGON2_MEMORY_KIB: "1024",
      FIELDCHECK__SERVER__MAX_CONNECTIONS_PER_ADDRESS: "0",
      RUST_LOG: process.env.RUST_LOG ?? "info",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stderr.on("data", chunk => (log += chunk));
  const base = await new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on("line", line => {
      const prefix = "fieldcheck listening on ";
      if (line.startsWith(prefix)) resolve(line.slice(prefix.length).trim());
    });
    child.on("exit", code => reject(new Error(`fieldcheck exited (${code}):\n${log}`)));
  });
  return {
    base,
    pid: child.pid,
    ws: token => `${base.replace(/^http/, "ws")}/api/v1/sync/ws?token=${encodeURIComponent(token)}`,
    log: () => log,
    async stop() {
      child.kill("SIGTERM");
      await new Promise(resolve => (child.exitCode !== null ? resolve() : child.on("exit", resolve)));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export class Api {
  constructor(base, token, login) {
    this.base = base;
    this.token = token;
    this.login = login;
  }

  static async login(base, username, deviceId) {
    const body = { username, password: "demo-password" };
    if (deviceId) body.device_id = deviceId;
    const res = await fetch(`${base}/api/v1/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const login = await res.json();
    if (res.status !== 200) throw new Error(`login ${username}: ${res.status} ${JSON.stringify(login)}`);
    return new Api(base, login.access_token, login);
  }

  async request(method, path, body) {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  async ok(method, path, body) {
    const { status, body: answer } = await this.request(method, path, body);
    if (status >= 300) throw new Error(`${method} ${path}: ${status} ${JSON.stringify(answer)}`);
    return answer;
  }
}

export const exportContent = () => ({
  direction: "export",
  district_code: "2200",
  site_code: "2201",
  applicant_code: "3101960001",
  consignor_code: "3101960001",
  consignee_name: "Osaka Seafood KK",
  destination_country: "JP",
  goods: [
    {
      hs_code: "0303110000",
      name: "frozen sockeye salmon",
      quantity: 1200.0,
      unit: "kg",
      net_weight_kg: 1200.0,
      value_usd: 9000.0,
      origin_country: "CN",
    },
  ],
  certificates: [],
});

export async function userId(base, username) {
  const me = await (await Api.login(base, username)).ok("GET", "/api/v1/me");
  return me.user.id;
}

/** Files, approves and assigns one instruction to `officers`; answers its id. */
export async function dispatched(base, officers) {
  const operator = await Api.login(base, "ent1-operator");
  const app = await operator.ok("POST", "/api/v1/applications", exportContent());
  await operator.ok("POST", `/api/v1/applications/${app.id}/submit`, {});
  const reviewer = await Api.login(base, "reviewer1");
  await reviewer.ok("POST", `/api/v1/applications/${app.id}/review`, { action: "approve" });
  const supervisor = await Api.login(base, "supervisor1");
  const list = await supervisor.ok("GET", "/api/v1/instructions");
  const instruction = list.find(i => i.application_id === app.id).id;
  await assign(base, instruction, officers);
  return instruction;
}

export async function assign(base, instruction, officers) {
  const supervisor = await Api.login(base, "supervisor1");
  const ids = [];
  for (const officer of officers) ids.push(await userId(base, officer));
  await supervisor.ok("POST", `/api/v1/instructions/${instruction}/assign`, { officer_ids: ids });
}

export async function recordView(base, instruction) {
  return (await Api.login(base, "supervisor1")).ok("GET", `/api/v1/instructions/${instruction}/record`);
}

/** The automerge URL of a server document named in hex (the index's `record_doc_id`). */
export function urlOfHex(hex) {
  return stringifyAutomergeUrl({ documentId: Uint8Array.from(Buffer.from(String(hex), "hex")) });
}

/**
 * A handheld app's copy of a device: claims the device (a new actor for this copy), logs in bound to it.
 * Answers { deviceId, actor, api }.
 */
export async function claimDevice(base, username, deviceId) {
  const plain = await Api.login(base, username);
  const device = await plain.ok("POST", `/api/v1/devices/${deviceId}/claim`);
  const api = await Api.login(base, username, deviceId);
  return { deviceId, actor: device.actor_id, api };
}

/**
 * An unmodified Repo with the WebSocket adapter, joined as the device. Every frame the server sends
 * is also recorded (`frames`), so tests can read the `error` messages the adapter only logs.
 */
export function connectRepo(server, token, deviceId) {
  // No automatic reconnect during a test: a refused client would otherwise retry every interval.
  const adapter = new WebSocketClientAdapter(server.ws(token), 600_000);
  const repo = new Repo({ network: [adapter], peerId: deviceId });
  const frames = [];
  let closed = false;
  // The adapter only logs `error` messages; record every frame so tests can read them.
  const receive = adapter.receiveMessage.bind(adapter);
  adapter.receiveMessage = bytes => {
    frames.push(cbor.decode(new Uint8Array(bytes)));
    return receive(bytes);
  };
  adapter.on("peer-disconnected", () => (closed = true));
  return {
    repo,
    adapter,
    frames,
    closed: () => closed,
    errors: () => frames.filter(f => f.type === "error").map(f => f.message),
    async find(url, actor) {
      const handle = await repo.find(url);
      // Write as the device's registered actor: the server accepts new changes only from it.
      if (actor) handle.update(doc => A.clone(doc, actor));
      return handle;
    },
    async close() {
      await repo.shutdown();
    },
  };
}

/** Writes a check result as docs/sync-protocol.md asks: fresh ops for result, by and at, in one change. */
export function setCheckResult(handle, item, result, officer) {
  handle.change(doc => {
    const check = doc.checks[item];
    for (const key of ["result", "by", "at"]) if (key in check) delete check[key];
    check.result = new A.ImmutableString(result);
    check.by = new A.ImmutableString(officer);
    check.at = Date.now();
  });
}

/**
 * Has the server stored everything this handle holds? The server names its storage in `peer`, and
 * answers a sync message only after committing it, so the heads it last reported are on its disk.
 */
export function storedOnServer(repo, handle) {
  const storageId = repo.peerMetadataByPeerId["fieldcheck-server"]?.storageId;
  const theirs = storageId && handle.getSyncInfo(storageId)?.lastHeads;
  if (!theirs) return false;
  const ours = handle.heads();
  return theirs.length === ours.length && ours.every(h => theirs.includes(h));
}

export async function eventually(what, condition, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(resolve => setTimeout(resolve, 20));
  }
}

export { A, readFileSync };
