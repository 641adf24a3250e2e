// shmgr GUI: Host mode and Client mode over one EventSource and JSON POSTs.
// No framework, no build step; every change is pushed by the server.
"use strict";
(function () {
  const I18N = window.SHMGR_I18N;
  const $ = (id) => document.getElementById(id);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const isMac = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);
  const utf8 = new TextEncoder();

  // ---- preferences (localStorage may be disabled: then nothing persists)
  function pref(key, def) {
    try { return localStorage.getItem("shmgr." + key) || def; } catch (e) { return def; }
  }
  function setPref(key, v) {
    try { localStorage.setItem("shmgr." + key, v); } catch (e) { /* not persisted */ }
  }

  // ---- language
  let lang = pref("lang", (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en");
  function t(key, p) {
    let s = (I18N[lang] && I18N[lang][key]) || I18N.en[key] || key;
    if (p) s = s.replace(/\{(\w+)\}/g, (m, k) => (p[k] !== undefined && p[k] !== null ? String(p[k]) : m));
    return s;
  }
  // errText explains a server error in the page's language.
  function errText(e, extra) {
    const key = "err_" + (e && e.code);
    if (I18N.en[key]) return t(key, Object.assign({}, extra || {}, e));
    return (e && e.error) || String(e);
  }
  function setText(el, key, p) {
    el.dataset.i18n = key;
    if (p) el.dataset.i18nArgs = JSON.stringify(p); else delete el.dataset.i18nArgs;
    el.textContent = t(key, p);
  }
  function applyLang() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.querySelectorAll("[data-i18n]").forEach((el) => {
      el.textContent = t(el.dataset.i18n, el.dataset.i18nArgs ? JSON.parse(el.dataset.i18nArgs) : undefined);
    });
    document.querySelectorAll("[data-i18n-label]").forEach((el) => {
      el.setAttribute("aria-label", t(el.dataset.i18nLabel));
      el.title = t(el.dataset.i18nLabel);
    });
    document.querySelectorAll("button.copy").forEach((b) => { b.setAttribute("aria-label", t("copy")); b.title = t("copy"); });
    $("lang").value = lang;
    hostEd.render();
    clientEd.render();
    if (lastHost) renderHost(lastHost);
    if (lastClient) renderClient(lastClient);
  }
  $("lang").addEventListener("change", () => { lang = $("lang").value; setPref("lang", lang); applyLang(); });

  // ---- theme: follow the system, dark, light
  let theme = pref("theme", "auto");
  function applyTheme() {
    if (theme === "auto") document.documentElement.removeAttribute("data-theme");
    else document.documentElement.setAttribute("data-theme", theme);
    const b = $("theme");
    b.dataset.i18nLabel = { auto: "themeAuto", dark: "themeDark", light: "themeLight" }[theme];
    b.dataset.mode = theme;
    b.setAttribute("aria-label", t(b.dataset.i18nLabel));
    b.title = t(b.dataset.i18nLabel);
  }
  $("theme").addEventListener("click", () => {
    theme = { auto: "dark", dark: "light", light: "auto" }[theme] || "auto";
    setPref("theme", theme);
    applyTheme();
  });

  // ---- the server's API: JSON POSTs with the CSRF header
  async function api(path, body) {
    let res;
    try {
      res = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body || {}),
        credentials: "same-origin",
      });
    } catch (e) {
      throw { code: "network", error: String(e) };
    }
    let data = {};
    try { data = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok) {
      data.status = res.status;
      throw data;
    }
    return data;
  }

  // ---- copy buttons
  const copyIcon = '<svg viewBox="0 0 24 24" aria-hidden="true"><rect x="9" y="9" width="11" height="11" rx="2"/><path d="M5 15V5a2 2 0 0 1 2-2h8"/></svg>';
  function copyButton(text) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "copy";
    b.dataset.copy = text;
    initCopy(b);
    return b;
  }
  function initCopy(b) {
    b.innerHTML = copyIcon;
    b.setAttribute("aria-label", t("copy"));
    b.title = t("copy");
  }
  document.querySelectorAll("button.copy").forEach(initCopy);
  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (e) {
      // Not a secure context (a remote GUI over http): the old way.
      const ta = document.createElement("textarea");
      ta.value = text;
      ta.setAttribute("readonly", "");
      ta.className = "offscreen";
      document.body.appendChild(ta);
      ta.select();
      let ok = false;
      try { ok = document.execCommand("copy"); } catch (e2) { ok = false; }
      ta.remove();
      return ok;
    }
  }
  document.addEventListener("click", async (e) => {
    const b = e.target.closest("button.copy");
    if (!b) return;
    const text = b.dataset.copyFrom ? $(b.dataset.copyFrom).textContent : b.dataset.copy;
    if (await copyText(text)) {
      b.classList.add("done");
      b.title = t("copied");
      b.setAttribute("aria-label", t("copied"));
      setTimeout(() => { b.classList.remove("done"); b.title = t("copy"); b.setAttribute("aria-label", t("copy")); }, 1200);
    }
  });

  // ---- mode tabs (arrow keys move between them)
  const tabs = [$("tab-host"), $("tab-client")];
  let mode = pref("mode", "host");
  function setMode(m, focus) {
    mode = m === "client" ? "client" : "host";
    setPref("mode", mode);
    tabs.forEach((tab) => {
      const on = tab.id === "tab-" + mode;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
      $(tab.getAttribute("aria-controls")).hidden = !on;
      if (on && focus) tab.focus();
    });
  }
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => setMode(tab.id.slice(4)));
    tab.addEventListener("keydown", (e) => {
      if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
        e.preventDefault();
        setMode(tabs[(i + 1) % 2].id.slice(4), true);
      }
    });
  });

  // ---- the editor of a region's content, for either mode
  //
  // base is the version the edit started from; a write is conditional on
  // it. Content pushed while the user has unsaved edits never replaces
  // them: it is kept in latest and a notice offers Reload or Overwrite.
  const norm = (s) => s.replace(/\r\n?/g, "\n"); // what a textarea makes of s
  // lockWaitAfter (ms): a write busy this long says who holds the lock, if
  // someone does (a shorter one only met a lock taken in passing).
  const lockWaitAfter = 300;
  class Editor {
    constructor(p, target) {
      this.p = p;
      this.target = target;
      this.text = $(p + "-text");
      this.base = null; // {region, version, shown}
      this.latest = null; // {region, version, content}: newer than base, not loaded
      this.max = 0;
      this.readOnly = "";
      this.region = "";
      this.busy = false;
      this.msg = null; // {key, p, kind} or {err, kind}
      this.noticeKey = "";
      this.off = "";
      // A raw region is edited as hex: a window of its bytes from want
      // (the offset asked for); hexOff is where the shown window begins.
      this.raw = false;
      this.want = 0;
      this.hexOff = 0;
      this.size = 0;
      // lockOwner is who holds the region's lock while a write waits.
      this.lockOwner = "";
      this.gutter = $(p + "-gutter");
      this.text.addEventListener("scroll", () => { this.gutter.scrollTop = this.text.scrollTop; });
      $(p + "-kbd").textContent = isMac ? "⌘↩" : "Ctrl+Enter";
      this.text.addEventListener("input", () => { this.msg = null; this.render(); });
      this.text.addEventListener("keydown", (e) => {
        if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
          e.preventDefault();
          this.write();
        }
      });
      $(p + "-write").addEventListener("click", () => this.write());
      const off = $(p + "-off");
      const go = () => {
        const n = Number(off.value);
        if (!Number.isInteger(n) || n < 0) { off.setAttribute("aria-invalid", "true"); return; }
        off.removeAttribute("aria-invalid");
        if (n === this.want) return;
        if (this.dirty() && !window.confirm(t("discardEdits"))) return;
        this.want = n;
        this.reset();
        openStream();
      };
      $(p + "-go").addEventListener("click", go);
      off.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); go(); } });
      $(p + "-reload").addEventListener("click", () => this.reload());
      $(p + "-overwrite").addEventListener("click", () => this.overwrite());
    }
    dirty() { return this.base !== null && this.text.value !== this.base.shown; }
    // reset empties the editor; off is the key of the reason shown.
    reset(off) {
      this.base = this.latest = null;
      this.region = "";
      this.readOnly = "";
      this.raw = false;
      this.text.value = "";
      this.noticeKey = "";
      this.msg = off ? { key: off, kind: "muted" } : null;
      this.render();
    }
    load(ev) {
      this.text.value = ev.content;
      this.base = { region: ev.region, version: ev.version, shown: this.text.value };
      this.latest = null;
      this.noticeKey = "";
    }
    receive(ev) {
      if (ev.gone) {
        this.reset();
        this.region = ev.region;
        this.msg = { key: "gone", p: { id: ev.region }, kind: "error" };
        this.render();
        return;
      }
      this.region = ev.region;
      this.max = ev.max;
      this.readOnly = ev.read_only || "";
      this.raw = ev.layout !== "utf8" && !this.readOnly;
      if (this.raw) {
        // Edited like text, as hex pairs: the window's bytes.
        this.hexOff = ev.hex_offset || 0;
        this.size = ev.size;
        $(this.p + "-off").value = String(this.hexOff);
        ev = Object.assign({}, ev, { content: fmtHex(ev.hex || "") });
      }
      const hex = $(this.p + "-hex");
      if (this.readOnly === "binary") {
        hex.textContent = hexDump(ev.hex || "");
        this.load(ev);
        this.msg = { key: "roBinary", p: { id: ev.region }, kind: "muted" };
      } else if (this.readOnly === "large") {
        this.load(ev);
        this.msg = { key: "roLarge", kind: "muted" };
      } else if (!this.base || this.base.region !== ev.region || this.base.version === undefined) {
        this.load(ev);
        if (this.msg && this.msg.kind === "muted") this.msg = null;
      } else if (ev.version === this.base.version) {
        // Nothing new; but after a raw write, the window it made.
        if (this.raw && !this.dirty()) this.load(ev);
      } else if (ev.version < this.base.version) {
        // Older than what the page shows (a write's reply got here
        // first): the base only moves forward.
      } else if (!this.dirty() || this.text.value === norm(ev.content)) {
        this.load(ev);
      } else if (!this.latest || ev.version > this.latest.version) {
        this.latest = ev;
        if (!this.busy) this.noticeKey = this.noticeKey || "notice";
      }
      if (this.raw && (!this.msg || this.msg.kind === "muted")) {
        const to = Math.min(this.size, this.hexOff + (ev.hex || "").length / 2);
        this.msg = { key: "rawHelp", p: { size: this.size, from: this.hexOff, last: Math.max(this.hexOff, to - 1) }, kind: "muted" };
      }
      this.render();
    }
    async write(ifVersion) {
      if (!this.base || this.readOnly || this.busy) return;
      const content = this.text.value;
      if (!this.raw) {
        // Refused here (the button is disabled, but Ctrl+Enter is not).
        const n = utf8.encode(content).length;
        if (n > this.max) {
          this.msg = { err: { code: "too_large", size: n, max: this.max }, kind: "error" };
          this.render();
          return;
        }
      }
      const v = ifVersion !== undefined ? ifVersion : this.base.version;
      const body = { target: this.target, region: this.base.region, content: content, if_version: v };
      if (this.raw) {
        const h = this.rawState();
        if (h.bad || h.over) return;
        body.content = "";
        body.hex = h.digits;
        body.offset = this.hexOff;
      }
      this.busy = true;
      this.busySince = Date.now();
      this.msg = { key: "writing", kind: "muted" };
      this.render();
      // A write that takes longer may be waiting for a lock: say whose.
      const slow = setTimeout(() => this.render(), lockWaitAfter);
      try {
        const r = await api("/api/write", body);
        // The reply and the pushes race: a push may have moved the base
        // past this write already. The base only moves forward.
        if (this.base && this.base.region === body.region && r.version > this.base.version) {
          this.base = { region: this.base.region, version: r.version, shown: content };
        }
        // A raw write patches a window: show the whole window it made.
        if (this.raw && this.latest && this.latest.version === r.version) this.load(this.latest);
        if (this.latest && this.base && this.latest.version <= this.base.version) this.latest = null;
        // A newer version pushed while the write was in flight is taken
        // as it is, unless the user typed since clicking Write: nothing
        // of theirs is lost, so there is nothing to resolve.
        if (this.latest && this.text.value === content) this.load(this.latest);
        this.noticeKey = this.latest ? "notice" : "";
        this.msg = { key: "written", p: { v: r.version }, kind: "ok" };
      } catch (e) {
        if (e.code === "conflict") {
          const cur = e.hex !== undefined ? fmtHex(e.hex) : e.content;
          if (cur !== undefined && (!this.latest || e.current >= this.latest.version)) {
            this.latest = { region: this.base.region, version: e.current, content: cur };
          }
          this.noticeKey = "conflict";
          this.msg = null;
        } else {
          this.msg = { err: e, extra: { id: this.base.region }, kind: "error" };
        }
      } finally {
        clearTimeout(slow);
        this.busy = false;
        if (this.latest && !this.noticeKey) this.noticeKey = "notice";
        this.render();
      }
    }
    reload() {
      if (this.latest) this.load(this.latest);
      this.noticeKey = "";
      this.msg = null;
      this.render();
      this.text.focus();
    }
    overwrite() {
      if (!this.latest) return;
      this.write(this.latest.version);
    }
    // rawState is the hex the user typed: its digits, bytes, and whether
    // it is bad (not pairs of hex digits) or passes the region's end.
    rawState() {
      const digits = this.text.value.replace(/\s+/g, "");
      const bad = !/^([0-9a-fA-F]{2})*$/.test(digits);
      const n = digits.length / 2;
      return { digits: digits, n: Math.floor(n), bad: bad, over: !bad && this.hexOff + n > this.size };
    }
    render() {
      const text = this.text;
      const editable = this.base !== null && !this.readOnly;
      text.disabled = this.base === null;
      text.readOnly = !editable;
      $(this.p + "-hex").hidden = this.readOnly !== "binary";
      text.hidden = !$(this.p + "-hex").hidden;
      text.classList.toggle("hexedit", this.raw);
      $(this.p + "-hexnav").hidden = !this.raw;
      $(this.p + "-region").textContent = this.region;
      $(this.p + "-version").textContent = this.base ? t("version", { v: this.base.version }) : "";
      // Byte counter against the region's maximum.
      const counter = $(this.p + "-counter");
      let blocked = false;
      let overBy = 0;
      if (this.base && this.raw) {
        const h = this.rawState();
        blocked = h.bad || h.over || h.n === 0;
        const p = { n: h.n, off: this.hexOff, size: this.size };
        counter.textContent = t(h.bad ? "rawBad" : h.over ? "rawOver" : "rawCount", p);
        counter.classList.toggle("over", h.bad || h.over);
        text.setAttribute("aria-invalid", String(h.bad || h.over));
      } else if (this.base && !this.readOnly) {
        const n = utf8.encode(text.value).length;
        const over = n > this.max;
        blocked = over;
        overBy = n - this.max;
        counter.textContent = over ? t("over", { n: n, max: this.max, over: n - this.max }) : t("bytes", { n: n, max: this.max });
        counter.classList.toggle("over", over);
        text.setAttribute("aria-invalid", String(over));
      } else {
        counter.textContent = "";
        text.removeAttribute("aria-invalid");
      }
      const wb = $(this.p + "-write");
      wb.disabled = !editable || this.busy || blocked;
      // Say why Write is disabled before anyone clicks.
      wb.title = !editable || this.busy ? "" : blocked && this.raw ? t("blockedTitle") : blocked ? t("overTitle", { over: overBy }) : "";
      // The offset of each line of a raw region's hex.
      this.gutter.hidden = !this.raw || this.base === null;
      if (!this.gutter.hidden) {
        let off = this.hexOff;
        this.gutter.textContent = text.value.split("\n").map((line) => {
          const s = String(off);
          off += Math.floor(line.replace(/\s+/g, "").length / 2);
          return s;
        }).join("\n");
        this.gutter.scrollTop = text.scrollTop;
        this.gutter.title = t("hexGutter");
      }
      // The conflict notice.
      const notice = $(this.p + "-notice");
      notice.hidden = !(this.noticeKey && this.latest);
      if (!notice.hidden) $(this.p + "-notice-text").textContent = t(this.noticeKey, { v: this.latest.version });
      // The message line.
      const m = $(this.p + "-msg");
      m.className = "msg" + (this.msg ? " " + this.msg.kind : "");
      m.textContent = !this.msg ? "" : this.msg.err ? errText(this.msg.err, this.msg.extra) : t(this.msg.key, this.msg.p);
      if (this.busy && this.msg && this.msg.key === "writing" && this.lockOwner && Date.now() - this.busySince >= lockWaitAfter) {
        // The write waits for a lock someone else holds: say who.
        m.textContent = t("waitingLock", { owner: this.lockOwner });
      }
    }
  }
  // fmtHex lays hex digits out as the raw editor shows them: bytes in
  // pairs, 16 to a line.
  function fmtHex(h) {
    const lines = [];
    for (let i = 0; i < h.length; i += 32) lines.push((h.slice(i, i + 32).match(/../g) || []).join(" "));
    return lines.join("\n");
  }
  function hexDump(h) {
    const lines = [];
    for (let i = 0; i < h.length; i += 32) {
      const row = h.slice(i, i + 32).match(/../g) || [];
      lines.push((i / 2).toString(16).padStart(6, "0") + "  " + row.join(" "));
    }
    return lines.join("\n");
  }

  const hostEd = new Editor("h", "host");
  const clientEd = new Editor("c", "client");

  // ---- Host mode
  let lastHost = null;
  let hostRegion = pref("region", ""); // the region shown; "" is the default
  const regionItems = new Map(); // id -> <li>

  function selectRegion(id) {
    if (id === hostRegion) return;
    if (hostEd.dirty() && !window.confirm(t("discardEdits"))) return;
    hostRegion = id;
    setPref("region", id);
    hostEd.want = 0;
    hostEd.reset();
    openStream();
    if (lastHost) renderHost(lastHost);
  }

  // fmtBytes says n bytes as shmgr's CLI does: B, KiB, MiB, GiB...
  function fmtBytes(n) {
    if (n < 1024) return n + " B";
    let div = 1024, exp = 0;
    for (let m = Math.floor(n / 1024); m >= 1024; m = Math.floor(m / 1024)) {
      div *= 1024;
      exp++;
    }
    return (n / div).toFixed(1) + " " + "KMGTPE"[exp] + "iB";
  }

  // costWhere names where a region's bytes live.
  function costWhere(st, durable) {
    if (durable) return t("onDisk");
    return st && st.shm_dir ? st.shm_dir : t("inShm");
  }

  // updateCost shows, as the user types, what the region being created
  // will cost: its data and its control block, whose undo area holds the
  // max write (raw, not durable) or the whole size. The max write field
  // is shown only where it applies.
  function updateCost() {
    const raw = $("create-layout").value === "raw";
    const durable = $("create-durable").checked;
    const field = $("create-maxwrite-field");
    field.hidden = !raw || durable;
    const el = $("create-cost");
    const size = Number($("create-size").value || "0");
    const mwIn = $("create-maxwrite");
    mwIn.max = size > 0 ? String(size) : "";
    mwIn.placeholder = t("maxWriteAll");
    const overhead = lastHost ? lastHost.ctl_overhead : 0;
    if (!(size > 0) || !overhead) {
      el.hidden = true;
      return;
    }
    let mw = field.hidden ? 0 : Number(mwIn.value || "0");
    if (!(mw >= 1 && mw <= size)) mw = size;
    const p = { total: fmtBytes(size + overhead + mw) + " (" + (size + overhead + mw) + " B)", where: costWhere(lastHost, durable), size: fmtBytes(size), ctl: fmtBytes(overhead + mw), mw: fmtBytes(mw) };
    el.hidden = false;
    setText(el, raw && !durable ? "createCostRaw" : "createCost", p);
  }
  ["create-size", "create-maxwrite"].forEach((id) => $(id).addEventListener("input", updateCost));
  ["create-layout", "create-durable"].forEach((id) => $(id).addEventListener("change", updateCost));

  function shownRegion(st) {
    const id = hostRegion || st.default;
    return st.regions.find((r) => r.id === id);
  }

  // The host's settings: each input, its field in a status's settings,
  // and the factor from what the input shows to that field.
  const hostSettings = [
    ["host-lock-timeout", "lock_timeout_ms", 1000],
    ["host-idle-timeout", "idle_timeout_ms", 1000],
    ["host-max-conns", "max_connections", 1],
    ["host-max-request", "max_request", 1],
    ["host-max-regions", "max_regions", 1],
    ["host-max-region-size", "max_region_size", 1],
  ];
  let settingsShown = false; // the form holds the defaults or the user's values
  function renderSettings(st) {
    if (!st.settings) return;
    // While a host runs, the form shows its settings; stopped, the
    // defaults once, then whatever the user typed.
    if (st.running || !settingsShown) {
      hostSettings.forEach(([id, key, f]) => { $(id).value = String(st.settings[key] / f); });
      $("host-tls").checked = !!st.settings.tls;
      settingsShown = !st.running;
    }
    hostSettings.forEach(([id]) => { $(id).disabled = st.running; });
    $("host-tls").disabled = st.running;
  }
  function settingsRequest() {
    const req = { tls: $("host-tls").checked };
    hostSettings.forEach(([id, key, f]) => {
      const v = $(id).value.trim();
      if (v !== "") req[key] = Math.round(Number(v) * f);
    });
    return req;
  }

  function renderHost(st) {
    lastHost = st;
    renderSettings(st);
    const badge = $("host-badge");
    badge.dataset.state = st.running ? "running" : "stopped";
    setText(badge, st.running ? "running" : "stopped");
    $("host-start").hidden = st.running;
    $("host-stop").hidden = !st.running;
    $("host-bind").disabled = $("host-port").disabled = st.running;
    if (st.running) {
      $("host-bind").value = st.bind;
      $("host-port").value = st.port;
    }
    $("host-datadir").textContent = st.data_dir || "–";
    // Where other machines reach this one, and what it takes.
    const bind = st.running ? st.bind : $("host-bind").value.trim() || "127.0.0.1";
    const local = isLoopback(bind);
    const addrs = (st.reachable || []).join(", ");
    setText($("host-bind-hint"), local ? "bindHintLocal" : "bindHintAll", { bind: bind, port: st.running ? st.port : $("host-port").value });
    setText($("host-reachable"), addrs ? "reachableAt" : "reachableNone", { addrs: addrs });
    // While it runs, the facts and the note below say it.
    $("host-bind-hint").hidden = $("host-reachable").hidden = st.running;
    const lb = $("host-loopback");
    lb.hidden = !(st.running && local && addrs);
    if (!lb.hidden) setText(lb, "loopbackOnly", { bind: bind, addrs: addrs });
    const notice = $("host-notice");
    notice.hidden = !(st.running && st.fallback_from);
    if (!notice.hidden) setText(notice, "portFallback", { from: st.fallback_from, port: st.port });

    // Facts, each with a copy button.
    $("host-facts").hidden = !st.running;
    const r = st.running ? shownRegion(st) : null;
    if (st.running) {
      const chips = $("fact-addresses");
      chips.textContent = "";
      st.addresses.forEach((a) => {
        const s = document.createElement("span");
        s.className = "copyable";
        const c = document.createElement("code");
        c.textContent = a;
        s.append(c, copyButton(a));
        chips.append(s);
      });
      $("fact-port").textContent = st.port;
      const id = r ? r.id : hostRegion || st.default;
      $("fact-shmid").textContent = id;
      $("fact-osname").textContent = r ? r.os_name : "–";
      $("fact-oskind").textContent = r ? "(" + r.os_kind + ")" : "";
      if (r && r.footprint) setText($("fact-cost"), "factCost", { total: fmtBytes(r.footprint) + " (" + r.footprint + " B)", where: costWhere(st, r.durable), mw: fmtBytes(r.max_write) });
      else $("fact-cost").textContent = "–";
      $("fact-token-dt").hidden = $("fact-token-dd").hidden = !st.token;
      $("fact-token").textContent = st.token || "";
      $("fact-tls-dt").hidden = $("fact-tls-dd").hidden = !st.tls_fingerprint;
      $("fact-tls").textContent = st.tls_fingerprint || "";
      const a = st.addresses[0] || "127.0.0.1";
      const hostPort = (a.includes(":") ? "[" + a + "]" : a) + ":" + st.port;
      $("fact-connect").textContent = "shmgr read --host " + hostPort + (id !== st.default ? " --id " + id : "") + (st.token ? " --token " + st.token : "") + (st.tls_fingerprint ? " --tls-fingerprint " + st.tls_fingerprint : "");
    }

    // Regions, updated in place so that focus stays put.
    $("regions-empty").hidden = st.running;
    $("regions-count").textContent = st.running ? String(st.regions.length) : "";
    $("create").hidden = !st.running;
    updateCost();
    const list = $("regions");
    const seen = new Set();
    st.regions.forEach((reg, i) => {
      seen.add(reg.id);
      let li = regionItems.get(reg.id);
      if (!li) {
        li = regionItem(reg.id);
        regionItems.set(reg.id, li);
      }
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
      const pick = li.querySelector(".pick");
      pick.setAttribute("aria-pressed", String(r !== null && r !== undefined && r.id === reg.id));
      li.querySelector(".rmeta").textContent = t("regionMeta", { layout: reg.layout, size: reg.size, v: reg.version });
      const lock = li.querySelector(".rlock");
      lock.hidden = !reg.locked;
      lock.title = reg.locked ? (reg.lock_owner ? t("lockHeld", { owner: reg.lock_owner }) : t("lockFlag")) : "";
      li.querySelector(".rtag").hidden = reg.id !== st.default;
      li.querySelector(".rtag").textContent = t("defaultTag");
      // The default region cannot be deleted: no button, and its item
      // spans the card.
      const del = li.querySelector(".del");
      del.hidden = reg.id === st.default;
      del.disabled = reg.id === st.default;
      if (!del.dataset.confirm) del.textContent = t("delete");
      del.setAttribute("aria-label", t("delete") + " " + reg.id);
    });
    for (const [id, li] of regionItems) {
      if (!seen.has(id)) {
        li.remove();
        regionItems.delete(id);
      }
    }

    // Clients.
    const rows = $("clients").tBodies[0];
    rows.textContent = "";
    st.clients.forEach((c) => {
      const tr = document.createElement("tr");
      const since = new Date(c.since);
      [c.addr, since.toLocaleTimeString(), String(c.watches)].forEach((v, i) => {
        const td = document.createElement("td");
        td.textContent = v;
        if (i === 0) td.className = "mono";
        tr.append(td);
      });
      rows.append(tr);
    });
    $("clients").hidden = st.clients.length === 0;
    $("clients-empty").hidden = st.clients.length > 0;
    $("clients-count").textContent = st.running ? String(st.clients.length) : "";

    // The editor's lock line and state.
    $("h-lock").textContent = r ? (r.locked ? (r.lock_owner ? t("lockHeld", { owner: r.lock_owner }) : t("lockFlag")) : t("lockFree")) : "";
    $("h-lock").classList.toggle("held", !!(r && r.locked));
    const owner = r && r.locked && r.lock_owner !== st.label ? (r.lock_owner || t("lockFlag")) : "";
    if (owner !== hostEd.lockOwner) {
      hostEd.lockOwner = owner;
      hostEd.render();
    }
    if (!st.running && (hostEd.base || !hostEd.msg)) hostEd.reset("hostOff");
  }

  function isLoopback(a) {
    return a === "localhost" || a === "::1" || a === "[::1]" || /^127\./.test(a);
  }
  $("host-bind").addEventListener("input", () => { if (lastHost && !lastHost.running) renderHost(lastHost); });

  function regionItem(id) {
    const li = document.createElement("li");
    li.className = "region";
    const pick = document.createElement("button");
    pick.type = "button";
    pick.className = "pick";
    pick.innerHTML = '<span class="rid"></span><span class="rtag tag"></span><span class="rlock" hidden aria-hidden="true">' +
      '<svg viewBox="0 0 24 24"><rect x="5" y="11" width="14" height="10" rx="2"/><path d="M8 11V8a4 4 0 0 1 8 0v3"/></svg></span><span class="rmeta"></span>';
    pick.querySelector(".rid").textContent = id;
    pick.addEventListener("click", () => selectRegion(id));
    const del = document.createElement("button");
    del.type = "button";
    del.className = "del small danger-outline";
    del.addEventListener("click", async () => {
      if (!del.dataset.confirm) {
        del.dataset.confirm = "1";
        del.textContent = t("confirmDelete");
        return;
      }
      delete del.dataset.confirm;
      try {
        await api("/api/host/delete", { id: id });
        if (hostRegion === id) selectRegion("");
      } catch (e) {
        showError("create-error", e, { id: id });
      }
    });
    del.addEventListener("blur", () => { delete del.dataset.confirm; del.textContent = t("delete"); });
    li.append(pick, del);
    return li;
  }

  function showError(elId, e, extra) {
    const el = $(elId);
    if (!e) {
      el.hidden = true;
      return;
    }
    el.hidden = false;
    el.textContent = errText(e, extra);
  }

  async function busy(button, fn) {
    button.disabled = true;
    try { await fn(); } finally { button.disabled = false; }
  }

  $("host-form").addEventListener("submit", (e) => {
    e.preventDefault();
    busy($("host-start"), async () => {
      showError("host-error", null);
      const port = Number($("host-port").value || "0");
      try {
        renderHost(await api("/api/host/start", Object.assign({ bind: $("host-bind").value.trim(), port: port }, settingsRequest())));
      } catch (err) {
        showError("host-error", err, { port: port });
      }
    });
  });
  $("host-stop").addEventListener("click", () => {
    busy($("host-stop"), async () => {
      showError("host-error", null);
      try { renderHost(await api("/api/host/stop", {})); } catch (err) { showError("host-error", err); }
    });
  });
  $("create-form").addEventListener("submit", (e) => {
    e.preventDefault();
    busy($("create-btn"), async () => {
      showError("create-error", null);
      const id = $("create-id").value.trim();
      try {
        await api("/api/host/create", {
          id: id,
          size: Number($("create-size").value || "0"),
          layout: $("create-layout").value,
          durable: $("create-durable").checked,
          max_write: $("create-maxwrite-field").hidden ? 0 : Number($("create-maxwrite").value || "0"),
        });
        $("create-maxwrite").value = "";
        $("create-id").value = "";
        $("create").open = false;
        selectRegion(id);
      } catch (err) {
        showError("create-error", err, { id: id });
      }
    });
  });

  // ---- Client mode
  let lastClient = null;
  let formFilled = false;

  function renderClient(st) {
    // The connect request's answer can arrive after a newer status from
    // the stream, which would not send that one again: keep the newer.
    if (lastClient && st.rev !== undefined && lastClient.rev !== undefined && st.rev < lastClient.rev) return;
    lastClient = st;
    const state = st.state || "idle";
    const badge = $("client-badge");
    badge.dataset.state = state;
    setText(badge, state);
    const usable = state === "connected" || state === "reconnecting" || state === "unreachable";
    const active = usable || state === "connecting";
    $("client-disconnect").hidden = !active && state !== "failed";
    if (st.addr && !formFilled) {
      // Another page (or an earlier load) connected: show where to.
      const i = st.addr.lastIndexOf(":");
      $("client-host").value = st.addr.slice(0, i).replace(/^\[|\]$/g, "");
      $("client-port").value = st.addr.slice(i + 1);
      $("client-shmid").value = st.shm_id || "";
      formFilled = true;
    }
    setText($("client-state"), state);
    $("client-state").dataset.state = state;
    const access = $("client-access");
    if (st.mode) setText(access, st.mode === "local" ? "accessLocal" : "accessTcp");
    else { delete access.dataset.i18n; access.textContent = "–"; }
    const reg = $("client-region");
    if (st.max && st.footprint) setText(reg, "regionInfoCost", { id: st.shm_id, layout: st.layout, max: st.max, total: fmtBytes(st.footprint), mw: fmtBytes(st.max_write) });
    else if (st.max) setText(reg, "regionInfo", { id: st.shm_id, layout: st.layout, max: st.max });
    else { delete reg.dataset.i18n; reg.textContent = st.shm_id || "–"; }
    const reason = $("client-reason");
    reason.hidden = !st.reason || state === "connected";
    if (!reason.hidden) reason.textContent = errText(Object.assign({}, st.extra || {}, { code: st.code, error: st.reason }), { id: st.shm_id, addr: st.addr });
    reason.className = state === "reconnecting" || state === "unreachable" ? "note" : "error";
    if ((st.lock_owner || "") !== clientEd.lockOwner) {
      clientEd.lockOwner = st.lock_owner || "";
      clientEd.render();
    }
    const why = $("client-why");
    why.hidden = !(st.mode === "tcp" && st.why_not_local);
    if (!why.hidden) why.textContent = t("whyNotLocal", { why: st.why_not_local });
    if (!usable) {
      if (clientEd.base || !clientEd.msg) clientEd.reset("clientOff");
    }
  }

  $("client-form").addEventListener("submit", (e) => {
    e.preventDefault();
    busy($("client-connect"), async () => {
      formFilled = true;
      if (clientEd.want) {
        clientEd.want = 0;
        openStream();
      }
      clientEd.reset();
      try {
        renderClient(await api("/api/client/connect", {
          host: $("client-host").value.trim(),
          port: Number($("client-port").value || "0"),
          shm_id: $("client-shmid").value.trim(),
          mode: $("client-mode").value,
          token: $("client-token").value,
          fingerprint: $("client-fp").value.trim(),
        }));
      } catch (err) {
        if (err.code === "network" || err.code === "csrf" || err.code === "no_session" || err.code === "bad_port" || err.code === "bad_fingerprint" || err.code === "bad_mode") {
          renderClient({ state: "failed", code: err.code, reason: err.error, extra: err });
        }
        // Connection failures arrive as the session's state too.
      }
    });
  });
  $("client-disconnect").addEventListener("click", () => {
    busy($("client-disconnect"), async () => {
      try { renderClient(await api("/api/client/disconnect", {})); } catch (err) { /* shown by the stream */ }
    });
  });

  // ---- the event stream: everything the server pushes
  let es = null;
  function openStream() {
    if (es) es.close();
    es = new EventSource("/api/events?region=" + encodeURIComponent(hostRegion) +
      "&host_offset=" + hostEd.want + "&client_offset=" + clientEd.want);
    es.addEventListener("host", (e) => renderHost(JSON.parse(e.data)));
    es.addEventListener("hostContent", (e) => hostEd.receive(JSON.parse(e.data)));
    es.addEventListener("client", (e) => renderClient(JSON.parse(e.data)));
    es.addEventListener("clientContent", (e) => clientEd.receive(JSON.parse(e.data)));
    es.addEventListener("open", () => { $("offline").hidden = true; });
    es.addEventListener("error", () => {
      const closed = es.readyState === EventSource.CLOSED;
      setText($("offline"), closed ? "offlineClosed" : "offline");
      $("offline").hidden = false;
    });
  }

  $("version").textContent = document.querySelector('meta[name="shmgr-version"]').content;
  hostEd.reset("hostOff");
  clientEd.reset("clientOff");
  applyTheme();
  applyLang();
  setMode(mode);
  openStream();
})();
