// TensorBoard's plugin host messages (its "experimental" plugin API).
//
// TensorBoard's reload button does not reach an iframe plugin directly: the
// host calls `reload()` on the plugin's element, and an <iframe> has none.
// What does reach it is the host's IPC: a guest posts the string
// "experimental.bootstrap" to its parent with a MessagePort; the host then
// broadcasts JSON messages {type, id, payload, error, isReply} on that port.
// "experimental.DataReloaded" is sent each time TensorBoard finished a reload
// (the reload button, and its own periodic reload), "experimental.RunsChanged"
// when its run list changed. Every message expects a reply with the same id.
//
// The protocol is marked experimental by TensorBoard; if a future TensorBoard
// drops it, nothing breaks here: the tab keeps its own 5 s refresh.

interface Message {
  type: string;
  id: number;
  payload: unknown;
  error: string | null;
  isReply: boolean;
}

export const DATA_RELOADED = "experimental.DataReloaded";
export const RUNS_CHANGED = "experimental.RunsChanged";

/** Listens to TensorBoard's plugin messages; returns false outside TensorBoard. */
export function connectToHost(handlers: Record<string, (payload: unknown) => void>): boolean {
  if (!window.parent || window.parent === window) return false;
  let channel: MessageChannel;
  try {
    channel = new MessageChannel();
  } catch {
    return false;
  }
  const port = channel.port1;
  port.addEventListener("message", (event: MessageEvent) => {
    let msg: Message;
    try {
      msg = JSON.parse(String(event.data)) as Message;
    } catch {
      return;
    }
    if (!msg || typeof msg.type !== "string" || msg.isReply) return;
    const handler = handlers[msg.type];
    let error: string | null = null;
    if (handler) {
      try {
        handler(msg.payload);
      } catch (e) {
        error = String(e);
      }
    }
    const reply: Message = { type: msg.type, id: msg.id, payload: null, error, isReply: true };
    port.postMessage(JSON.stringify(reply));
  });
  port.start();
  try {
    window.parent.postMessage("experimental.bootstrap", "*", [channel.port2]);
  } catch {
    return false;
  }
  return true;
}
