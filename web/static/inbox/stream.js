// The agent websocket: resumes with ?after=<last event id> after any drop, without a page reload.

export class Stream {
  /**
   * handlers: {event(frame), ephemeral(frame), resync(), state("connecting"|"live"|"reconnecting")}
   */
  constructor(handlers, lastEventId = null) {
    this.handlers = handlers;
    this.lastEventId = lastEventId;
    this.socket = null;
    this.attempt = 0;
    this.closed = false;
    this.pingTimer = null;
    this.queue = [];
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const after = this.lastEventId === null ? "" : `?after=${this.lastEventId}`;
    return `${scheme}//${location.host}/api/v1/stream${after}`;
  }

  connect() {
    this.handlers.state(this.attempt === 0 ? "connecting" : "reconnecting");
    const socket = new WebSocket(this.url());
    this.socket = socket;
    socket.onmessage = (message) => this.receive(message.data);
    socket.onclose = () => this.dropped(socket);
    socket.onerror = () => socket.close();
  }

  receive(raw) {
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      return;
    }
    if (frame.type === "ready") {
      this.attempt = 0;
      if (frame.last_event_id !== undefined && frame.last_event_id !== null) {
        this.lastEventId = Math.max(this.lastEventId ?? 0, frame.last_event_id);
      }
      this.handlers.state("live");
      for (const item of this.queue.splice(0)) this.send(item);
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.send({ type: "ping" }), 25000);
      this.handlers.ready?.();
    } else if (frame.type === "resync") {
      this.handlers.resync();
    } else if (typeof frame.id === "number") {
      if (this.lastEventId !== null && frame.id <= this.lastEventId) return;
      this.lastEventId = frame.id;
      this.handlers.event(frame);
    } else if (frame.type === "error") {
      console.warn("stream error", frame.code, frame.detail);
    } else if (frame.type !== "pong") {
      this.handlers.ephemeral(frame);
    }
  }

  dropped(socket) {
    if (socket !== this.socket) return;
    clearInterval(this.pingTimer);
    if (this.closed) return;
    this.attempt += 1;
    this.handlers.state("reconnecting");
    const delay = Math.min(5000, 250 * 2 ** Math.min(this.attempt - 1, 5)) * (0.75 + Math.random() / 2);
    setTimeout(() => this.connect(), delay);
  }

  /** Send a client frame; presence is queued across a reconnect, typing/viewing are dropped when offline. */
  send(frame) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(frame));
    } else if (frame.type === "presence") {
      this.queue = this.queue.filter((item) => item.type !== "presence").concat(frame);
    }
  }

  close() {
    this.closed = true;
    this.socket?.close();
  }
}
