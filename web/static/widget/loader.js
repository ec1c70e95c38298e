/* Switchboard chat widget loader, served as /widget.js.
 *
 *   <script src="https://support.example.com/widget.js" data-key="INBOX_PUBLIC_KEY" async></script>
 *
 * Installs a launcher bubble (in a shadow root, so the host page's CSS cannot reach it) and the chat window
 * (an iframe served by Switchboard: full style isolation). Talks to the iframe only with postMessage, checking
 * both the sender and the origin. Public API: window.Switchboard.identify({id, name, email, hash}), open(),
 * close(), toggle(). `data-locale="en|ru"` overrides the browser's language.
 */
(function () {
  "use strict";
  if (window.Switchboard && window.Switchboard.loaded) return;
  var script = document.currentScript || document.querySelector("script[data-key][src*='widget.js']");
  if (!script || !script.getAttribute("data-key")) return;
  var key = script.getAttribute("data-key");
  var locale = script.getAttribute("data-locale") || "";
  var base = new URL(script.src, location.href).origin;

  var state = { ready: false, open: false, identity: null, unread: 0, position: "right" };
  var outbox = [];

  var host = document.createElement("div");
  host.setAttribute("data-switchboard-widget", "");
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var css =
    ":host{all:initial}" +
    ".sb-launcher{position:fixed;bottom:20px;right:20px;width:56px;height:56px;border-radius:50%;border:0;" +
    "background:var(--sb-color,#2563eb);color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);" +
    "z-index:2147483000;display:flex;align-items:center;justify-content:center;padding:0}" +
    ".sb-launcher[hidden],.sb-window[hidden],.sb-badge[hidden]{display:none}" +
    ".sb-launcher:focus-visible{outline:3px solid #111;outline-offset:3px}" +
    ".sb-left .sb-launcher{right:auto;left:20px}" +
    ".sb-badge{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;border-radius:10px;background:#dc2626;" +
    "color:#fff;font:bold 12px/20px system-ui,sans-serif;text-align:center;padding:0 5px;box-sizing:border-box}" +
    ".sb-window{position:fixed;bottom:88px;right:20px;width:370px;height:min(600px,calc(100vh - 110px));" +
    "z-index:2147483000;border-radius:12px;overflow:hidden;box-shadow:0 8px 30px rgba(0,0,0,.25);background:#fff}" +
    ".sb-left .sb-window{right:auto;left:20px}" +
    ".sb-window iframe{border:0;width:100%;height:100%;display:block}" +
    "@media (max-width:480px){.sb-root .sb-window{inset:0;width:100%;height:100%;border-radius:0}" +
    ".sb-open .sb-launcher{display:none}}";
  // A constructed stylesheet is CSSOM, so a host page's strict style-src CSP does not block it.
  var adopted = false;
  try {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    root.adoptedStyleSheets = [sheet];
    adopted = true;
  } catch (error) {
    adopted = false;
  }
  root.innerHTML =
    (adopted ? "" : "<style>" + css + "</style>") +
    "<div class='sb-root'>" +
    "<div class='sb-window' hidden><iframe title='Chat' allow='clipboard-write'></iframe></div>" +
    "<button class='sb-launcher' type='button' aria-expanded='false' aria-label='Chat' hidden>" +
    "<svg width='28' height='28' viewBox='0 0 24 24' aria-hidden='true' fill='currentColor'>" +
    "<path d='M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z'/></svg>" +
    "<span class='sb-badge' hidden></span></button></div>";

  var wrapper = root.querySelector(".sb-root");
  var windowEl = root.querySelector(".sb-window");
  var frame = root.querySelector("iframe");
  var launcher = root.querySelector(".sb-launcher");
  var badge = root.querySelector(".sb-badge");
  var params = "key=" + encodeURIComponent(key) + (locale ? "&locale=" + encodeURIComponent(locale) : "");
  frame.src = base + "/widget/frame?" + params;

  function post(message) {
    if (state.ready && frame.contentWindow) frame.contentWindow.postMessage(message, base);
    else outbox.push(message);
  }

  function setOpen(open) {
    state.open = open;
    if (!state.ready) return; // applied once the frame is ready
    windowEl.hidden = !open;
    wrapper.classList.toggle("sb-open", open);
    launcher.setAttribute("aria-expanded", open ? "true" : "false");
    post({ sb: open ? "open" : "close" });
    if (open) {
      state.unread = 0;
      showBadge();
      frame.focus();
    } else {
      launcher.focus();
    }
  }

  function showBadge() {
    badge.hidden = state.unread === 0;
    badge.textContent = state.unread > 9 ? "9+" : String(state.unread);
  }

  launcher.addEventListener("click", function () {
    setOpen(!state.open);
  });

  window.addEventListener("message", function (event) {
    if (event.source !== frame.contentWindow || event.origin !== base) return;
    var data = event.data || {};
    if (data.sb === "ready") {
      state.ready = true;
      host.style.setProperty("--sb-color", /^#[0-9a-f]{6}$/i.test(data.color) ? data.color : "#2563eb");
      wrapper.classList.toggle("sb-left", data.position === "left");
      launcher.setAttribute("aria-label", String(data.label || "Chat"));
      launcher.hidden = false;
      frame.contentWindow.postMessage(
        { sb: "init", identity: state.identity, open: state.open, page: location.href },
        base
      );
      outbox.splice(0).forEach(post);
      if (state.open) setOpen(true);
    } else if (data.sb === "unread") {
      state.unread = state.open ? 0 : Math.max(0, Number(data.count) || 0);
      showBadge();
    } else if (data.sb === "close") {
      setOpen(false);
    } else if (data.sb === "open") {
      setOpen(true);
    }
  });

  window.Switchboard = {
    loaded: true,
    identify: function (identity) {
      state.identity = identity ? {
        id: String(identity.id),
        name: identity.name || null,
        email: identity.email || null,
        hash: identity.hash || null,
      } : null;
      post({ sb: "identify", identity: state.identity });
    },
    open: function () { setOpen(true); },
    close: function () { setOpen(false); },
    toggle: function () { setOpen(!state.open); },
  };

  function mount() {
    document.body.appendChild(host);
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
