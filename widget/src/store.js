// What survives a page reload: Rasa's session id and the secret that resumes it, the rendered
// history and whether the panel was open. Kept per server URL so two bots on one site don't mix.
const MAX_HISTORY = 200;

export class ChatStore {
  constructor(serverUrl) {
    this.key = `support-chat:${serverUrl}`;
    this.state = { sessionId: null, sessionSecret: null, history: [], open: false };
    try {
      Object.assign(this.state, JSON.parse(localStorage.getItem(this.key) || "{}"));
    } catch (error) {
      // Storage disabled or corrupt: the chat still works, it just won't survive a reload.
    }
  }

  get session() { return { id: this.state.sessionId, secret: this.state.sessionSecret }; }
  get history() { return this.state.history; }
  get open() { return this.state.open; }

  set session({ id, secret }) {
    Object.assign(this.state, { sessionId: id, sessionSecret: secret });
    this.save();
  }
  set open(value) { this.state.open = value; this.save(); }

  add(entry) {
    this.state.history = [...this.state.history, entry].slice(-MAX_HISTORY);
    this.save();
  }

  save() {
    try {
      localStorage.setItem(this.key, JSON.stringify(this.state));
    } catch (error) {
      // Same as above: keep chatting without persistence.
    }
  }
}
