// Self-service answers and proactive messages, installed into the chat window by frame.js with a few hooks:
// `welcomed()` after each welcome, `rendered(list)` after each render, `page(url)` when the loader tells the
// host page's address, and `beforeSend()` before a typed message goes out.

import { installAnswers } from "./answers.js";
import { installProactive } from "./proactive.js";
import { call } from "./selfserve-strings.js";

export function installSelfServe(base) {
  const ctx = { ...base };
  ctx.call = (method, path, params, body) => call(ctx, method, path, params, body);
  const answers = installAnswers(ctx);
  const proactive = installProactive(ctx);
  return {
    welcomed() {
      answers.welcomed();
      proactive.welcomed();
    },
    rendered(list) {
      proactive.rendered(list);
      answers.rendered();
    },
    page: (url) => proactive.page(url),
    beforeSend: () => proactive.beforeSend(),
  };
}
