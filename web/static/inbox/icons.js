// Channel icons as inline SVG (no icon font, no emoji that a system may lack).

const PATHS = {
  email: "M3 6h18v12H3z M3 6l9 7 9-7",
  webchat: "M4 5h16v10H9l-5 4z",
  telegram: "M3 11l18-7-4 16-5-5-3 4v-6l8-6",
  api: "M4 8h14l-3-3 M20 16H6l3 3",
};

export function channelIcon(channel) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "16");
  svg.setAttribute("height", "16");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "channel-icon");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", PATHS[channel] || "M12 12m-4 0a4 4 0 1 0 8 0a4 4 0 1 0 -8 0");
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "2");
  path.setAttribute("stroke-linejoin", "round");
  path.setAttribute("stroke-linecap", "round");
  svg.append(path);
  return svg;
}
