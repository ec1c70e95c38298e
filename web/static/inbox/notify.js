// Opt-in desktop notifications and a short sound for new customer messages in my conversations.

const KEY = "switchboard.notify";

export const notifications = {
  enabled() {
    return localStorage.getItem(KEY) === "on";
  },

  async enable() {
    if ("Notification" in window && Notification.permission === "default") {
      await Notification.requestPermission();
    }
    localStorage.setItem(KEY, "on");
  },

  disable() {
    localStorage.setItem(KEY, "off");
  },

  /** Called for an incoming message in a conversation assigned to me. */
  announce(title, body, onClick) {
    if (!this.enabled()) return;
    beep();
    if (document.hasFocus()) return;
    if ("Notification" in window && Notification.permission === "granted") {
      const note = new Notification(title, { body, tag: "switchboard" });
      note.onclick = () => {
        window.focus();
        onClick();
        note.close();
      };
    }
  },
};

let audio = null;

function beep() {
  try {
    audio = audio || new AudioContext();
    const oscillator = audio.createOscillator();
    const gain = audio.createGain();
    oscillator.frequency.value = 880;
    gain.gain.setValueAtTime(0.08, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.25);
    oscillator.connect(gain).connect(audio.destination);
    oscillator.start();
    oscillator.stop(audio.currentTime + 0.25);
    document.body.dataset.sounds = String(Number(document.body.dataset.sounds || 0) + 1);
  } catch {
    // no audio device: the notification alone will do
  }
}
