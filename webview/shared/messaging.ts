/** Message ids and replies between a webview and the host (the protocol of src/protocol/messages.ts). */
import type { MessageBase } from '../../src/protocol/messages';

export function createMessenger<ToHost extends MessageBase, FromHost extends MessageBase & { type: string }, S>(api: VsCodeWebviewApi<S>, onMessage: (m: FromHost) => void) {
  let nextId = 1;
  const pending = new Map<number, (m: FromHost) => void>();
  window.addEventListener('message', (event: MessageEvent<FromHost>) => {
    const m = event.data;
    if (!m || typeof m !== 'object' || typeof m.type !== 'string') return;
    if (m.inReplyTo !== undefined) {
      pending.get(m.inReplyTo)?.(m);
      pending.delete(m.inReplyTo);
    }
    onMessage(m);
  });
  return {
    send(msg: ToHost extends unknown ? Omit<ToHost, 'messageId'> : never): Promise<FromHost> {
      const messageId = nextId++;
      return new Promise((resolve) => {
        pending.set(messageId, resolve);
        api.postMessage({ ...msg, messageId });
      });
    },
  };
}
