// Rasa's socket.io channel: ask for our stored session id on every (re)connect so the server
// keeps the same conversation, then exchange user_uttered / bot_uttered events.
import { io } from "socket.io-client";

export function connect({ serverUrl, socketPath, sessionId, onSession, onMessage, onStatus }) {
  let session = sessionId;
  let ready = false;
  // WebSocket only: no long-polling requests, so no CORS set-up is needed on Rasa's side.
  const socket = io(serverUrl, { path: socketPath, transports: ["websocket"], reconnectionDelayMax: 5000 });

  socket.on("connect", () => socket.emit("session_request", { session_id: session }));
  socket.on("session_confirm", (confirmed) => {
    session = typeof confirmed === "string" ? confirmed : confirmed && confirmed.session_id;
    ready = true;
    onSession(session);
    onStatus("ready");
  });
  socket.on("bot_uttered", (message) => message && typeof message === "object" && onMessage(message));
  socket.on("disconnect", (reason) => {
    ready = false;
    onStatus("reconnecting");
    // The client only retries by itself after a lost connection, not after the server closed it.
    if (reason === "io server disconnect") setTimeout(() => socket.connect(), 1000);
  });
  socket.on("connect_error", () => onStatus("reconnecting"));

  return {
    get ready() { return ready; },
    send(text) { socket.emit("user_uttered", { message: text, session_id: session }); },
  };
}
