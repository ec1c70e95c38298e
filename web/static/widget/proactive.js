// Proactive messages in the widget: the inbox's rules come from /widget/proactive for this page; a rule
// fires after its time on page (and only for returning visitors, or while agents are online, when it says
// so) unless the visitor is already chatting. Its greeting shows as an agent bubble; when the visitor
// answers, the server opens the conversation with the greeting as its first (automatic) message, then
// the answer is sent as usual.

const started = performance.timeOrigin || Date.now();

function visits(storage) {
  // A visit is a browser session: counted once per tab session, remembered per inbox.
  let count = storage.get("visits", 0);
  try {
    if (!window.sessionStorage.getItem("sb-visit")) {
      window.sessionStorage.setItem("sb-visit", "1");
      count += 1;
      storage.set("visits", count);
    }
  } catch {
    count = Math.max(count, 1);
  }
  return count;
}

export function installProactive(ctx) {
  const visitCount = visits(ctx.storage);
  let page = "";
  let asked = false;
  let pending = null; // {rule, greetingId, element}
  const timers = [];

  const chatting = () => ctx.state.messages.size > 0 || ctx.state.queue.length > 0;

  async function load() {
    if (asked || !ctx.state.uploadToken || chatting()) return;
    asked = true;
    let data;
    try {
      data = await ctx.call("GET", "/widget/proactive", { url: page });
    } catch {
      return;
    }
    for (const rule of data.items) {
      if (rule.returning_only && visitCount < 2) continue;
      if (rule.agents_online_only && !data.agents_online) continue;
      const wait = Math.max(0, rule.min_seconds_on_page * 1000 - (Date.now() - started));
      timers.push(setTimeout(() => fire(rule), wait));
      break; // the first rule that applies; one greeting per page
    }
  }

  async function fire(rule) {
    if (pending || chatting()) return;
    if (rule.agents_online_only && !ctx.state.agentsOnline) return;
    try {
      await ctx.call("POST", `/widget/proactive/${rule.id}/shown`); // counted first: a reply needs it
    } catch {
      return;
    }
    if (pending || chatting()) return;
    pending = { rule, greetingId: ctx.uuid() };
    ctx.render();
    ctx.tellParent({ sb: "open" });
  }

  return {
    page(url) {
      if (typeof url === "string") page = url.slice(0, 2000);
      if (ctx.state.welcomed) load();
    },
    welcomed() {
      if (page || !ctx.embedded) {
        if (!page) page = location.href;
        load();
      }
    },
    rendered(list) {
      if (!pending) return;
      const li = document.createElement("li");
      li.className = "sb-msg sb-agent sb-proactive";
      li.dataset.proactive = String(pending.rule.id);
      const text = document.createElement("div");
      text.className = "sb-bubble";
      text.textContent = pending.rule.message;
      li.append(text);
      // Right after the inbox's own greeting: nothing of the conversation exists yet, only the queue.
      if (list.firstElementChild) list.firstElementChild.after(li);
      else list.append(li);
    },
    /** Before the visitor's first message after a greeting: open the conversation with the greeting. */
    async beforeSend() {
      if (!pending || pending.sending) return;
      const current = pending;
      current.sending = true;
      try {
        const data = await ctx.call("POST", `/widget/proactive/${current.rule.id}/reply`, {}, {
          greeting_id: current.greetingId,
        });
        ctx.remember({ id: data.message_id, author: "agent", body: current.rule.message, attachments: [],
          sender_name: "", client_id: null });
        pending = null;
      } catch {
        current.sending = false; // the answer still goes out as a normal message; the greeting stays local
      }
      ctx.render();
    },
  };
}
