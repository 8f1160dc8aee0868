// The embedder's settings, read from data- attributes of the widget's own <script> tag.
const RASA_DEFAULT_PORT = 5005;

export function readOptions(script) {
  const data = (script && script.dataset) || {};
  return {
    serverUrl: (data.serverUrl || `${location.protocol}//${location.hostname}:${RASA_DEFAULT_PORT}`).replace(/\/+$/, ""),
    socketPath: data.socketPath || "/socket.io",
    title: data.title || "Support",
    color: data.color || "",
    textColor: data.textColor || "",
    initialPayload: data.initialPayload || "",
  };
}
