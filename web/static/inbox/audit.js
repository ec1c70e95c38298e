// The audit-log page is rendered on the server; this only shows its UTC times in the reader's time zone.
for (const node of document.querySelectorAll("#audit-table time[datetime]")) {
  const when = new Date(node.getAttribute("datetime"));
  if (!Number.isNaN(when.getTime())) node.textContent = when.toLocaleString();
}
