// Messages as DOM nodes. Text only ever becomes text nodes (never HTML), links and images only
// keep http(s) URLs, so nothing a message contains can run in the page.
const SAFE_PROTOCOLS = new Set(["http:", "https:"]);
// [label](url) as Rasa responses often write links, or a bare http(s) URL.
const LINK = /\[([^\]\n]+)\]\(([^)\s]+)\)|(https?:\/\/[^\s<>"']+)/g;
const TRAILING_PUNCTUATION = /[.,;:!?)\]]+$/;

export function safeUrl(value) {
  try {
    const url = new URL(String(value));
    return SAFE_PROTOCOLS.has(url.protocol) ? url.href : null;
  } catch (error) {
    return null;
  }
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function link(href, label) {
  const anchor = element("a", "", label);
  anchor.href = href;
  anchor.target = "_blank";
  anchor.rel = "noopener noreferrer";
  return anchor;
}

export function appendText(parent, text) {
  let done = 0;
  for (const match of text.matchAll(LINK)) {
    const [whole, label, target, bare] = match;
    const url = bare ? bare.replace(TRAILING_PUNCTUATION, "") : target;
    const href = safeUrl(url);
    if (!href) continue; // stays plain text
    parent.append(text.slice(done, match.index), link(href, label || url));
    done = match.index + (bare ? url.length : whole.length);
  }
  parent.append(text.slice(done));
}

export function renderUserMessage(text) {
  return element("div", "message user", text);
}

// One bot message of Rasa's socket.io channel: text, quick_replies or buttons, an image attachment.
export function renderBotMessage(message, onButton) {
  const bubble = element("div", "message bot");
  if (typeof message.text === "string" && message.text) {
    const paragraph = element("p");
    appendText(paragraph, message.text);
    bubble.append(paragraph);
  }
  const attachment = message.attachment || {};
  const source = safeUrl(attachment.payload && attachment.payload.src);
  if (source && attachment.type === "image") {
    const image = element("img");
    image.src = source;
    image.alt = "Image from the assistant";
    image.loading = "lazy";
    bubble.append(image);
  } else if (source) {
    bubble.append(link(source, "Open attachment"));
  }
  const buttons = message.quick_replies || message.buttons || [];
  if (Array.isArray(buttons) && buttons.length) {
    const group = element("div", "buttons");
    group.setAttribute("role", "group");
    for (const { title, payload } of buttons) {
      if (typeof payload !== "string") continue;
      const button = element("button", "", String(title || payload));
      button.type = "button";
      button.addEventListener("click", () => onButton(String(title || payload), payload));
      group.append(button);
    }
    bubble.append(group);
  }
  return bubble.childElementCount ? bubble : null;
}
