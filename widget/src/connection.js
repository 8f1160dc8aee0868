// Rasa's socket.io channel (bot/channels/socketio.py): present our stored session id and the secret
// the server issued with it on every (re)connect, so the server resumes the same conversation; a
// session it cannot verify is replaced by a new one, which we store. Then exchange user_uttered /
// bot_uttered events: the server runs each message in the session it confirmed for this socket.
import { io } from "socket.io-client";

export function connect({ serverUrl, socketPath, session, onSession, onMessage, onStatus }) {
  let current = session;
  let ready = false;
  // WebSocket only: no long-polling requests, so no CORS set-up is needed on Rasa's side.
  const socket = io(serverUrl, { path: socketPath, transports: ["websocket"], reconnectionDelayMax: 5000 });

  socket.on("connect", () => socket.emit("session_request", { session_id: current.id, session_secret: current.secret }));
  socket.on("session_confirm", (confirmed) => {
    if (!confirmed || typeof confirmed.session_id !== "string" || typeof confirmed.session_secret !== "string") return;
    current = { id: confirmed.session_id, secret: confirmed.session_secret };
    ready = true;
    onSession(current);
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
    send(text) { socket.emit("user_uttered", { message: text }); },
  };
}
