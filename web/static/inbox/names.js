// Names and file names people chose (customers, visitors, agents, senders of attachments) are shown
// isolated and with their direction controls visible, so "Ann \u202Egpj.exe" cannot pose as "Ann exe.jpg"
// nor reverse the text around it; long unbroken names wrap (the `.user-text` class in inbox.css).

import { h } from "./dom.js";

// Bidi controls: ALM, LRM, RLM, LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI.
const CONTROLS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;

/** The text with every bidi control shown as a visible mark ("⟦U+202E⟧") instead of acting on the text. */
export function showControls(text) {
  return String(text ?? "").replace(CONTROLS, (ch) => `⟦U+${ch.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}⟧`);
}

/** A `<bdi dir="auto">` holding a user-supplied name or file name, controls visible. */
export function isolated(text, className = "") {
  return h("bdi", { dir: "auto", class: `user-text${className ? ` ${className}` : ""}` }, showControls(text));
}
