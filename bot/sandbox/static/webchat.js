// CareCircle sandbox web chat: one pane per simulated Telegram user, talking to the bot through FakeTelegram.
// Plain DOM, no framework.  Every text from the bot or a user is inserted with textContent / text nodes;
// formatting comes from message entities and builds elements, never HTML strings.
"use strict";
(() => {
  const API = "/sandbox/api";
  const STORE_KEY = "carecircle.webchat.open";
  const MAX_DEFAULT_PANES = 3;
  const panes = new Map(); // user id -> pane state
  let users = new Map(); // user id -> user json
  let personas = [];

  const $ = (id) => document.getElementById(id);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  async function api(method, path, body, signal) {
    const options = { method, headers: { Accept: "application/json" }, signal };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(API + path, options);
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (!response.ok || !data || data.ok === false) {
      throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
    }
    return data;
  }

  function notice(text) {
    $("notice").textContent = text || "";
    if (text) setTimeout(() => { if ($("notice").textContent === text) $("notice").textContent = ""; }, 6000);
  }

  // ---------------------------------------------------------------------------------- formatting

  const SAFE_URL = /^(https?:|tg:|mailto:)/i;
  const WRAPPERS = {
    bold: "b", italic: "i", underline: "u", strikethrough: "s", code: "code", pre: "pre",
    text_link: "a", url: "a", spoiler: "span", blockquote: "blockquote", expandable_blockquote: "blockquote",
  };

  function wrapperFor(entity, segmentText, fullText) {
    const tag = WRAPPERS[entity.type];
    if (!tag) return null;
    const node = document.createElement(tag);
    if (tag === "a") {
      const href = entity.type === "url" ? fullText.slice(entity.offset, entity.offset + entity.length) : entity.url;
      if (!href || !SAFE_URL.test(href)) return null;
      node.href = href;
      node.target = "_blank";
      node.rel = "noopener noreferrer";
    } else if (entity.type === "spoiler") {
      node.className = "spoiler";
      node.addEventListener("click", () => node.classList.add("shown"));
    }
    return node;
  }

  // Render text + Bot API entities (UTF-16 offsets, the same unit as JS strings) into a fragment.
  function renderText(text, entities) {
    const fragment = document.createDocumentFragment();
    const len = text.length;
    const usable = (entities || []).filter((e) => WRAPPERS[e.type] && Number.isInteger(e.offset)
      && Number.isInteger(e.length) && e.length > 0 && e.offset >= 0 && e.offset < len);
    if (!usable.length) {
      fragment.append(document.createTextNode(text));
      return fragment;
    }
    const cuts = new Set([0, len]);
    for (const e of usable) { cuts.add(e.offset); cuts.add(Math.min(len, e.offset + e.length)); }
    const points = [...cuts].sort((a, b) => a - b);
    for (let i = 0; i + 1 < points.length; i++) {
      const start = points[i], end = points[i + 1];
      let node = document.createTextNode(text.slice(start, end));
      const active = usable.filter((e) => e.offset <= start && e.offset + e.length >= end)
        .sort((a, b) => a.length - b.length); // innermost first
      for (const entity of active) {
        const wrapper = wrapperFor(entity, text.slice(start, end), text);
        if (wrapper) { wrapper.append(node); node = wrapper; }
      }
      fragment.append(node);
    }
    return fragment;
  }

  // ---------------------------------------------------------------------------------- messages

  function timeOf(date) {
    if (!date) return "";
    const d = new Date(date * 1000);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function renderMessage(pane, m) {
    const node = el("div", "msg " + (m.from_bot ? "bot" : "me"));
    node.dataset.messageId = String(m.message_id);
    if (m.deleted) node.classList.add("deleted");
    if (m.reply_to_message_id) {
      const target = pane.messages.get(m.reply_to_message_id);
      const quoted = target && target.text ? target.text.slice(0, 80) : "…";
      node.append(el("div", "quote", quoted));
    }
    if (m.photo) {
      if (m.from_bot) {
        const src = `${API}/users/${pane.id}/messages/${m.message_id}/photo`;
        const link = el("a", "photo");
        link.href = src;
        link.target = "_blank";
        link.rel = "noopener";
        const img = el("img");
        img.src = src;
        img.alt = "photo";
        img.loading = "lazy";
        link.append(img);
        node.append(link);
      } else {
        node.append(el("div", "media", "🖼 photo"));
      }
    }
    if (m.document) {
      const name = m.document.name || "file";
      if (m.from_bot) {
        const link = el("a", "doc", `📄 ${name}` + (m.document.size ? ` (${Math.ceil(m.document.size / 1024)} KB)` : ""));
        link.href = `${API}/users/${pane.id}/messages/${m.message_id}/document`;
        link.download = name;
        node.append(link);
      } else {
        node.append(el("div", "media", `📄 ${name}`));
      }
    }
    if (m.text) {
      const text = el("div", "text");
      text.append(renderText(m.text, m.entities));
      node.append(text);
    } else if (!m.photo && !m.document) {
      node.append(el("div", "media", "(no text)"));
    }
    const meta = [timeOf(m.date)];
    if (m.edited) meta.push("edited");
    if (m.deleted) meta.push("deleted");
    node.append(el("div", "meta", meta.filter(Boolean).join(" · ")));
    if (m.inline_keyboard && m.inline_keyboard.length) {
      const keyboard = el("div", "inline-kb");
      for (const row of m.inline_keyboard) {
        const rowNode = el("div", "row");
        for (const button of row) rowNode.append(inlineButton(pane, m, button));
        keyboard.append(rowNode);
      }
      node.append(keyboard);
    }
    return node;
  }

  function inlineButton(pane, m, button) {
    if (button.url !== undefined) {
      const link = el("a", "inline-btn url", button.text + " ↗");
      if (SAFE_URL.test(button.url)) { link.href = button.url; link.target = "_blank"; link.rel = "noopener noreferrer"; }
      return link;
    }
    const node = el("button", "inline-btn", button.text);
    node.type = "button";
    if (button.data === undefined || m.deleted) {
      node.disabled = true;
      return node;
    }
    node.dataset.callbackData = button.data;
    node.addEventListener("click", async () => {
      node.classList.add("pending");
      try {
        await api("POST", `/users/${pane.id}/press`, { message_id: m.message_id, data: button.data });
      } catch (err) {
        toast(pane, err.message, "error");
      } finally {
        setTimeout(() => node.classList.remove("pending"), 600);
      }
    });
    return node;
  }

  function upsertMessage(pane, m) {
    pane.messages.set(m.message_id, m);
    const node = renderMessage(pane, m);
    const old = pane.nodes.get(m.message_id);
    if (old) {
      old.replaceWith(node);
    } else {
      let before = null;
      for (const [id, other] of pane.nodes) {
        if (id > m.message_id && (!before || id < Number(before.dataset.messageId))) before = other;
      }
      pane.list.insertBefore(node, before);
    }
    pane.nodes.set(m.message_id, node);
    pane.start.hidden = true;
  }

  function markDeleted(pane, messageId) {
    const m = pane.messages.get(messageId);
    if (m) upsertMessage(pane, { ...m, deleted: true });
  }

  function toast(pane, text, kind) {
    const node = el("div", "toast" + (kind ? " " + kind : ""), text);
    node.addEventListener("click", () => node.remove());
    pane.root.append(node);
    if (kind !== "alert") setTimeout(() => node.remove(), 3500);
  }

  function renderReplyKeyboard(pane, rows) {
    const key = JSON.stringify(rows || []);
    if (key === pane.keyboardKey) return;
    pane.keyboardKey = key;
    pane.replyKb.replaceChildren();
    for (const row of rows || []) {
      const rowNode = el("div", "row");
      for (const label of row) {
        const button = el("button", "reply-btn", label);
        button.type = "button";
        button.addEventListener("click", () => sendText(pane, label));
        rowNode.append(button);
      }
      pane.replyKb.append(rowNode);
    }
  }

  function setStatus(pane, text) {
    pane.status.textContent = text || "";
  }

  function applyEvent(pane, event) {
    if (event.type === "message") upsertMessage(pane, event.message);
    else if (event.type === "delete") markDeleted(pane, event.message_id);
    else if (event.type === "callback_answer") toast(pane, event.text, event.show_alert ? "alert" : "");
    else if (event.type === "action") {
      setStatus(pane, event.action === "typing" ? "typing…" : String(event.action).replace(/_/g, " ") + "…");
      clearTimeout(pane.statusTimer);
      pane.statusTimer = setTimeout(() => setStatus(pane, ""), 5000);
    }
  }

  // ---------------------------------------------------------------------------------- panes

  async function poll(pane) {
    let failures = 0;
    while (!pane.closed) {
      const query = pane.cursor === null ? "" : `?cursor=${pane.cursor}&timeout=25`;
      try {
        const data = await api("GET", `/users/${pane.id}/events${query}`, undefined, pane.abort.signal);
        if (pane.closed) return;
        const nearBottom = pane.list.scrollHeight - pane.list.scrollTop - pane.list.clientHeight < 80;
        if (data.reset) {
          for (const node of pane.nodes.values()) node.remove();
          pane.nodes.clear();
          pane.messages.clear();
          pane.start.hidden = false;
        }
        for (const event of data.events) applyEvent(pane, event);
        pane.cursor = data.cursor;
        renderReplyKeyboard(pane, data.reply_keyboard);
        if (failures) setStatus(pane, "");
        failures = 0;
        if (data.events.length && (nearBottom || data.reset)) pane.list.scrollTop = pane.list.scrollHeight;
      } catch (err) {
        if (pane.closed) return;
        failures += 1;
        setStatus(pane, "reconnecting…");
        if (/unknown user/.test(err.message)) { closePane(pane.id); notice(err.message); return; }
        if (failures > 2) pane.cursor = null; // the server may have restarted: ask for a full snapshot
        await sleep(Math.min(5000, 500 * failures));
      }
    }
  }

  async function sendText(pane, text) {
    if (!text || !text.trim()) return;
    try {
      await api("POST", `/users/${pane.id}/send`, { text });
    } catch (err) {
      toast(pane, err.message, "error");
      throw err;
    }
  }

  function openPane(userId, { focus = false } = {}) {
    userId = Number(userId);
    const existing = panes.get(userId);
    if (existing) {
      existing.root.scrollIntoView({ behavior: "smooth", block: "nearest" });
      existing.root.classList.add("flash");
      setTimeout(() => existing.root.classList.remove("flash"), 800);
      existing.input.focus();
      return existing;
    }
    const user = users.get(userId);
    if (!user) { notice(`Unknown user ${userId}`); return null; }
    const root = el("section", "pane");
    root.dataset.userId = String(userId);
    const head = el("div", "pane-head");
    const titles = el("div");
    titles.append(el("div", "name", user.first_name + (user.last_name ? " " + user.last_name : "")));
    titles.append(el("div", "sub", `id ${user.id} · ${user.language_code || "?"}`));
    const status = el("span", "status");
    const close = el("button", "close", "×");
    close.type = "button";
    close.title = "Close this chat (the user stays)";
    close.setAttribute("aria-label", "Close chat");
    head.append(titles, status, close);

    const list = el("div", "messages");
    const start = el("div", "start");
    start.append(el("div", null, "No messages yet."));
    const startButton = el("button", "start-btn", "Start");
    startButton.type = "button";
    start.append(startButton);
    list.append(start);

    const replyKb = el("div", "reply-kb");
    const form = el("form", "composer");
    form.autocomplete = "off";
    const input = el("input");
    input.name = "text";
    input.placeholder = "Message";
    input.maxLength = 4096;
    input.setAttribute("aria-label", `Message as ${user.first_name}`);
    const send = el("button", "send", "Send");
    send.type = "submit";
    form.append(input, send);
    root.append(head, list, replyKb, form);

    const pane = {
      id: userId, root, list, start, replyKb, input, status, cursor: null, closed: false,
      nodes: new Map(), messages: new Map(), keyboardKey: null, abort: new AbortController(), statusTimer: null,
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = input.value;
      if (!text.trim()) return;
      input.value = "";
      sendText(pane, text).catch(() => { if (!input.value) input.value = text; });
    });
    startButton.addEventListener("click", () => sendText(pane, "/start").catch(() => {}));
    close.addEventListener("click", () => closePane(userId));
    panes.set(userId, pane);
    $("panes").append(root);
    $("empty-hint").hidden = true;
    saveOpen();
    poll(pane);
    if (focus) input.focus();
    return pane;
  }

  function closePane(userId) {
    const pane = panes.get(userId);
    if (!pane) return;
    pane.closed = true;
    pane.abort.abort();
    pane.root.remove();
    panes.delete(userId);
    $("empty-hint").hidden = panes.size > 0;
    saveOpen();
  }

  function saveOpen() {
    try { localStorage.setItem(STORE_KEY, JSON.stringify([...panes.keys()])); } catch (_) { /* private mode */ }
  }

  function savedOpen() {
    try {
      const value = JSON.parse(localStorage.getItem(STORE_KEY) || "null");
      return Array.isArray(value) ? value.map(Number).filter((id) => users.has(id)) : [];
    } catch (_) {
      return [];
    }
  }

  // ---------------------------------------------------------------------------------- header

  async function loadUsers() {
    const data = await api("GET", "/users");
    users = new Map(data.users.map((u) => [u.id, u]));
    personas = data.personas || [];
    const picker = $("user-picker");
    const selected = picker.value;
    picker.replaceChildren();
    const placeholder = el("option", null, users.size ? "Open an existing user…" : "No users yet");
    placeholder.value = "";
    picker.append(placeholder);
    for (const u of users.values()) {
      const option = el("option", null, `${u.first_name} (${u.language_code || "?"}, ${u.id})${u.persona ? " ★" : ""}`);
      option.value = String(u.id);
      picker.append(option);
    }
    if (selected && users.has(Number(selected))) picker.value = selected;
  }

  async function init() {
    $("add-user").addEventListener("submit", async (event) => {
      event.preventDefault();
      const name = $("new-name").value.trim();
      if (!name) return;
      try {
        const data = await api("POST", "/users", { first_name: name, language: $("new-lang").value });
        $("new-name").value = "";
        await loadUsers();
        openPane(data.user.id, { focus: true });
      } catch (err) {
        notice(err.message);
      }
    });
    $("open-user").addEventListener("submit", async (event) => {
      event.preventDefault();
      const value = $("user-picker").value;
      if (!value) return;
      if (!users.has(Number(value))) await loadUsers();
      openPane(Number(value), { focus: true });
    });
    $("user-picker").addEventListener("focus", () => loadUsers().catch((err) => notice(err.message)));
    try {
      await loadUsers();
    } catch (err) {
      notice("Cannot reach the sandbox: " + err.message);
      return;
    }
    let open = savedOpen();
    if (!open.length) open = personas.slice(0, MAX_DEFAULT_PANES);
    for (const id of open) openPane(id);
    document.body.dataset.ready = "1";
  }

  init();
})();
