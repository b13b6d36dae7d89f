// xmpp.js (@xmpp/client, Node, TCP + STARTTLS) logging in with SASL2 (XEP-0388), Bind2 (XEP-0386) and
// FAST (XEP-0484), for interop/fast_tests.sh.
//
// node fast_login.mjs --service xmpp://127.0.0.1:PORT --domain localhost --username alice --password secret
//                     [--resource fast] [--bad-token]
//
//  1. password login over SASL2 with Bind2, asking for a FAST token (xmpp.js asks by itself when the server
//     offers FAST and it holds no token); the token must arrive in <success/>;
//  2. a second connection with the same user-agent id and the token but no password: it must log in with the
//     FAST mechanism (<authenticate mechanism='HT-...'> with <fast/>), never with a password mechanism;
//     --bad-token: the token is altered first and the login must fail (prints the <failure/> condition);
//  3. on the second connection, a message to its own full JID, waited for.
// Prints "-- ..." notes, then "OK <full jid>" or "ERROR <reason>"; exit 0/1. Trust the server's certificate
// with NODE_EXTRA_CA_CERTS. xmpp.js sends no `count` on <fast/> (XEP-0484 makes it optional without 0-RTT).
import { client, xml } from "@xmpp/client";

globalThis.crypto ??= (await import("node:crypto")).webcrypto;

const arg = (name, dflt) => {
  const i = process.argv.indexOf("--" + name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const badToken = process.argv.includes("--bad-token");
const note = (s) => console.log(`-- ${s}`);
const NS_SASL2 = "urn:xmpp:sasl:2";
const NS_FAST = "urn:xmpp:fast:0";
const NS_BIND2 = "urn:xmpp:bind:0";
// One user-agent id for both connections: servers keep FAST tokens per client (XEP-0388's user-agent id).
const userAgent = () =>
  xml("user-agent", { id: agentId }, xml("software", {}, "xmpp-sansio interop (xmpp.js)"), xml("device", {}, "ci"));
const agentId = globalThis.crypto.randomUUID();

let finished = false;
const timer = setTimeout(() => finish("ERROR timeout", 1), 30000);
let current;
function finish(line, code) {
  if (finished) return;
  finished = true;
  clearTimeout(timer);
  console.log(line);
  const stop = current ? current.stop().catch(() => {}) : Promise.resolve();
  stop.finally(() => setTimeout(() => process.exit(code), 200));
}

// Connects one client, watching what it sends and receives. Resolves with { xmpp, seen } once online.
async function connect(credentials) {
  const seen = { authenticate: [], fastAuth: false, requestToken: null, bind2: false, failures: [], success: null, token: null };
  current = { seen, stop: async () => {} };
  const xmpp = client({
    service: arg("service"),
    domain: arg("domain", "localhost"),
    resource: arg("resource", "fast"),
    username: credentials.username,
    credentials,
    userAgent: userAgent(),
  });
  current = Object.assign(xmpp, { seen });
  xmpp.reconnect.stop();
  xmpp.on("send", (el) => {
    if (el.is("authenticate", NS_SASL2)) {
      seen.authenticate.push(el.attrs.mechanism);
      seen.fastAuth ||= !!el.getChild("fast", NS_FAST);
      seen.requestToken ??= el.getChild("request-token", NS_FAST)?.attrs.mechanism ?? null;
      seen.bind2 ||= !!el.getChild("bind", NS_BIND2);
    }
  });
  xmpp.on("element", (el) => {
    if (el.is("failure", NS_SASL2)) seen.failures.push(el.getChildElements()[0]?.name ?? "(no condition)");
    if (el.is("success", NS_SASL2)) {
      seen.success = el;
      const t = el.getChild("token", NS_FAST);
      if (t) seen.token = { token: t.attrs.token, expiry: t.attrs.expiry };
    }
  });
  xmpp.on("error", (err) => note(`xmpp.js error: ${err.condition || err.message}`));
  // xmpp.js keeps the token it got in fast.saveToken; keep ours from the wire instead (above).
  await xmpp.start();
  return { xmpp, seen };
}

async function messageToSelf(xmpp) {
  const body = `hello from xmpp.js over FAST ${agentId}`;
  const back = new Promise((resolve) =>
    xmpp.on("stanza", (s) => {
      if (s.is("message") && s.attrs.from === xmpp.jid.toString() && s.getChildText("body") === body) resolve();
    }),
  );
  await xmpp.send(xml("message", { to: xmpp.jid.toString(), type: "chat", id: "fast1" }, xml("body", {}, body)));
  await back;
}

async function main() {
  const username = arg("username");
  // 1. password login, SASL2 + Bind2, token requested
  const first = await connect({ username, password: arg("password") });
  const s1 = first.seen;
  if (s1.authenticate.length !== 1) throw new Error(`SASL2 <authenticate/> sent ${s1.authenticate.length} times`);
  note(`SASL2 ${s1.authenticate[0]}${s1.bind2 ? " + Bind2" : ""} as ${first.xmpp.jid}`);
  if (!s1.bind2) throw new Error("no inline Bind2 request in <authenticate/>");
  if (!s1.requestToken) throw new Error("no FAST <request-token/> sent (was FAST offered?)");
  if (!s1.token) throw new Error(`no FAST <token/> in <success/> (asked for ${s1.requestToken})`);
  note(`FAST token received for ${s1.requestToken} (expiry ${s1.token.expiry})`);
  await first.xmpp.stop();

  // 2. the token, no password
  let token = s1.token.token;
  if (badToken) token = token.slice(0, -1) + (token.endsWith("A") ? "B" : "A");
  let second;
  try {
    second = await connect({
      username,
      token: { mechanism: s1.requestToken, token, expiry: s1.token.expiry },
    });
  } catch (err) {
    const s = current.seen;
    // xmpp.js falls back to a password mechanism after a FAST failure (here without a password): report
    // the FAST attempt's own failure.
    if (s.fastAuth && s.failures.length) throw new Error(`FAST ${s.authenticate[0]} refused: ${s.failures[0]}`);
    throw new Error(`login with the token failed: ${err.condition || err.message}`);
  }
  const s2 = second.seen;
  if (s2.authenticate.length !== 1 || s2.authenticate[0] !== s1.requestToken || !s2.fastAuth)
    throw new Error(`second login sent ${s2.authenticate} (fast element: ${s2.fastAuth}), not one FAST login`);
  note(`FAST ${s2.authenticate[0]} login as ${second.xmpp.jid}${s2.token ? " (token rotated)" : ""}`);

  // 3. a message to self
  await messageToSelf(second.xmpp);
  note("message to self came back");
  finish(`OK ${second.xmpp.jid}`, 0);
}

main().catch((err) => finish(`ERROR ${err.condition || err.message}`, 1));
