// Entry point of widget.js: one <script src=".../widget.js" data-server-url=...> mounts the chat.
import { connect } from "./connection.js";
import { readOptions } from "./options.js";
import { renderBotMessage, renderUserMessage } from "./render.js";
import { ChatStore } from "./store.js";
import { ChatUi } from "./ui.js";

function mount(options) {
  const store = new ChatStore(options.serverUrl);
  let connection = null;
  let greeted = false;

  const sendText = (shown, message) => {
    if (!connection || !connection.ready) return false;
    if (shown) showUser(shown);
    connection.send(message);
    ui.showTyping(true);
    return true;
  };
  const showUser = (text) => {
    store.add({ from: "user", text });
    ui.append(renderUserMessage(text));
  };
  const showBot = (message) => {
    const node = renderBotMessage(message, (title, payload) => sendText(title, payload));
    if (!node) return;
    store.add({ from: "bot", message });
    ui.append(node);
  };
  // A new conversation opens with the embedder's payload (e.g. "/greet") the first time it is shown.
  const greetIfNew = () => {
    if (options.initialPayload && store.open && !store.history.length && !greeted) {
      greeted = sendText(null, options.initialPayload);
    }
  };

  const ui = new ChatUi(options, {
    onOpen: (open) => {
      store.open = open;
      greetIfNew();
    },
    onSend: (text) => sendText(text, text),
  });
  for (const entry of store.history) {
    const node = entry.from === "user"
      ? renderUserMessage(String(entry.text))
      : renderBotMessage(entry.message || {}, (title, payload) => sendText(title, payload));
    if (node) ui.append(node);
  }
  connection = connect({
    serverUrl: options.serverUrl,
    socketPath: options.socketPath,
    session: store.session,
    onSession: (session) => {
      store.session = session;
    },
    onMessage: (message) => {
      ui.showTyping(false);
      showBot(message);
    },
    onStatus: (state) => {
      ui.setStatus(state);
      if (state === "ready") greetIfNew();
    },
  });
  if (store.open) ui.open({ focus: false });
}

const options = readOptions(document.currentScript);
if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", () => mount(options));
} else {
  mount(options);
}
