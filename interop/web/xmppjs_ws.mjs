// xmpp.js (@xmpp/client) over RFC 7395 WebSocket, for interop/capture_web.sh.
// node xmppjs_ws.mjs --service ws://127.0.0.1:P/xmpp-websocket --domain localhost --username alice
//                    --password secret --mech SCRAM-SHA-1|PLAIN [--resource web] [--bad-ack]
// Logs in (RFC 6120 SASL with the mechanism forced + bind; xmpp.js enables XEP-0198 by itself when
// offered), sends a message to its own full JID, waits for it, stops (<close/>). Prints "OK <jid>" or
// "ERROR <reason>", exit 0/1. --bad-ack: once the message is back, send <a xmlns='urn:xmpp:sm:3' h='5'/>
// (more than Prosody sent) and wait for the stream error. xmpp.js 0.14 sends such an ack by itself when
// an initial presence's echo races its <enable/> (it counts the echo), but only now and then.
import { client, xml } from "@xmpp/client";

// node 22+ has a global WebSocket (node 20/21 behind --experimental-websocket); otherwise the ws package
globalThis.WebSocket ??= (await import("ws")).WebSocket;
globalThis.crypto ??= (await import("node:crypto")).webcrypto;

const arg = (name, dflt) => {
  const i = process.argv.indexOf("--" + name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const mech = arg("mech", "SCRAM-SHA-1");
const badAck = process.argv.includes("--bad-ack");
const xmpp = client({
  service: arg("service"),
  domain: arg("domain", "localhost"),
  resource: arg("resource", "web"),
  credentials: async (authenticate, mechanisms) => {
    if (!mechanisms.includes(mech)) throw new Error(`${mech} not offered (${mechanisms})`);
    await authenticate({ username: arg("username"), password: arg("password") }, mech);
  },
});
xmpp.reconnect.stop();
let finished = false;
const done = (line, code) => {
  if (finished) return;
  finished = true;
  console.log(line);
  clearTimeout(timer);
  xmpp.stop().catch(() => {}).finally(() => setTimeout(() => process.exit(code), 300));
};
const timer = setTimeout(() => done("ERROR timeout", 1), 20000);
xmpp.on("error", (err) => {
  console.error("[xmpp.js] error:", err.condition || err.message);
  if (xmpp.status === "online" || badAck) done(`ERROR ${err.condition || err.message}`, 1);
});
// Prosody 13 sends <stream:error> over WebSocket without declaring xmlns:stream, so xmpp.js does not
// see a stream error (element.is("error", NS_STREAM) is false); look at the element's name as well.
xmpp.on("element", (el) => {
  if (badAck && el.name.endsWith("error") && el.children.length)
    done(`ERROR <${el.name}> ${el.children[0].name}${el.is("error", "http://etherx.jabber.org/streams") ? "" : " (not seen by xmpp.js as a stream error)"}`, 1);
});
xmpp.on("stanza", (s) => {
  if (!s.is("message") || s.attrs.from !== xmpp.jid.toString() || s.getChildText("body") !== "hello from xmpp.js") return;
  if (!badAck) return done(`OK ${xmpp.jid}`, 0);
  xmpp.send(xml("a", { xmlns: "urn:xmpp:sm:3", h: "5" })).catch(() => {});
  setTimeout(() => done(`OK ${xmpp.jid} (no stream error)`, 0), 3000);
});
xmpp.on("online", async (address) => {
  await xmpp.send(xml("message", { to: address.toString(), type: "chat", id: "m1" }, xml("body", {}, "hello from xmpp.js")));
});
xmpp.start().catch((err) => done(`ERROR ${err.condition || err.message}`, 1));
