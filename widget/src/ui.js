// The launcher and the chat panel, inside a shadow root so the host page's CSS and ours
// don't touch. The skeleton is static markup; everything from options or messages is set as text.
import css from "./styles.css";

const SKELETON = `
<button class="launcher" type="button" aria-label="Open chat" aria-expanded="false" aria-controls="panel">
  <svg viewBox="0 0 24 24" width="28" height="28" aria-hidden="true"><path fill="currentColor"
    d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>
</button>
<section class="panel" id="panel" role="dialog" aria-labelledby="title" hidden>
  <header>
    <h2 id="title"></h2>
    <button class="close" type="button" aria-label="Close chat">&times;</button>
  </header>
  <div class="status" role="status"></div>
  <div class="log" role="log" aria-live="polite" aria-label="Conversation" tabindex="0"></div>
  <div class="typing" aria-label="The assistant is typing" hidden><span></span><span></span><span></span></div>
  <form>
    <label class="visually-hidden" for="input">Message</label>
    <input id="input" type="text" autocomplete="off" maxlength="2000" placeholder="Type a message…">
    <button type="submit">Send</button>
  </form>
</section>`;

const STATUS_TEXT = { connecting: "Connecting…", reconnecting: "Connection lost, reconnecting…", ready: "" };
const TYPING_TIMEOUT_MS = 30000;

export class ChatUi {
  constructor(options, { onOpen, onSend }) {
    this.host = document.createElement("div");
    this.host.className = "support-chat-widget";
    if (options.color) this.host.style.setProperty("--sc-color", options.color);
    if (options.textColor) this.host.style.setProperty("--sc-text-color", options.textColor);
    const root = this.host.attachShadow({ mode: "open" });
    const style = document.createElement("style");
    style.textContent = css;
    const template = document.createElement("template");
    template.innerHTML = SKELETON;
    root.append(style, template.content);

    const $ = (selector) => root.querySelector(selector);
    this.launcher = $(".launcher");
    this.panel = $(".panel");
    this.log = $(".log");
    this.typing = $(".typing");
    this.status = $(".status");
    this.input = $("#input");
    this.sendButton = $("form button");
    $("#title").textContent = options.title;

    this.launcher.addEventListener("click", () => (this.panel.hidden ? this.open() : this.close()));
    $(".close").addEventListener("click", () => this.close());
    this.panel.addEventListener("keydown", (event) => event.key === "Escape" && this.close());
    $("form").addEventListener("submit", (event) => {
      event.preventDefault();
      const text = this.input.value.trim();
      if (text && !this.sendButton.disabled && onSend(text)) this.input.value = "";
    });
    this.onOpen = onOpen;
    this.setStatus("connecting");
    document.body.append(this.host);
  }

  open({ focus = true } = {}) {
    this.panel.hidden = false;
    this.launcher.setAttribute("aria-expanded", "true");
    this.launcher.setAttribute("aria-label", "Close chat");
    if (focus) this.input.focus();
    this.scrollToEnd();
    this.onOpen(true);
  }

  close() {
    this.panel.hidden = true;
    this.launcher.setAttribute("aria-expanded", "false");
    this.launcher.setAttribute("aria-label", "Open chat");
    this.launcher.focus();
    this.onOpen(false);
  }

  setStatus(state) {
    this.status.textContent = STATUS_TEXT[state];
    this.status.hidden = !STATUS_TEXT[state];
    this.sendButton.disabled = state !== "ready";
  }

  append(node) {
    // Only the newest message's buttons can still be pressed.
    for (const button of this.log.querySelectorAll(".buttons button")) button.disabled = true;
    this.log.append(node);
    this.scrollToEnd();
  }

  showTyping(visible) {
    clearTimeout(this.typingTimer);
    this.typing.hidden = !visible;
    if (visible) this.typingTimer = setTimeout(() => this.showTyping(false), TYPING_TIMEOUT_MS);
    this.scrollToEnd();
  }

  scrollToEnd() {
    this.log.scrollTop = this.log.scrollHeight;
  }
}
