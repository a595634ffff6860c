// The live channel: one WebSocket per page for everything it follows (jobs' events, "the
// lab changed"), reconnecting by itself and resuming each job after its last event seen.
import { signedOut, ApiError } from "./api.js";

class LiveChannel {
  constructor() {
    this.socket = null;
    this.jobs = new Map(); // job id -> {after, kinds, onEvent, onEnd}
    this.lab = new Set();
    this.state = "connecting";
    this.stateListeners = new Set();
    this.failures = 0;
    this.timer = null;
  }

  connect() {
    if (this.socket || this.timer) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/api/v1/live`);
    this.socket = socket;
    socket.onopen = () => {
      this.failures = 0;
      this.setState("live");
      for (const [jobId, sub] of this.jobs) this.sendFollow(jobId, sub);
      if (this.lab.size) {
        this.send({ type: "watch_lab" });
      }
    };
    socket.onmessage = (message) => this.receive(JSON.parse(message.data));
    socket.onclose = () => {
      this.socket = null;
      this.setState("reconnecting");
      const delay = Math.min(10000, 300 * 2 ** this.failures++);
      this.timer = setTimeout(() => {
        this.timer = null;
        this.connect();
      }, delay);
    };
  }

  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  sendFollow(jobId, sub) {
    this.send({ type: "follow_job", job_id: jobId, after: sub.after, kinds: sub.kinds });
  }

  receive(message) {
    switch (message.type) {
      case "event": {
        const sub = this.jobs.get(message.event.job_id);
        if (!sub || message.event.id <= sub.after) return;
        sub.after = message.event.id;
        sub.onEvent(message.event);
        break;
      }
      case "job_end":
        this.jobs.get(message.job_id)?.onEnd?.(message.state);
        break;
      case "lab_changed":
        this.lab.forEach((listener) => listener(message.topics));
        break;
      case "error":
        if (message.fatal && ["unauthenticated", "invalid_token"].includes(message.code)) {
          signedOut(new ApiError(401, message));
        }
        break;
    }
  }

  setState(state) {
    this.state = state;
    this.stateListeners.forEach((listener) => listener(state));
  }

  /** Receive job `jobId`'s events after id `after` as they are stored; returns a stop. */
  followJob(jobId, after, { onEvent, onEnd, kinds = [] }) {
    const sub = { after, kinds, onEvent, onEnd };
    this.jobs.set(jobId, sub);
    this.connect();
    this.sendFollow(jobId, sub);
    return () => {
      if (this.jobs.get(jobId) === sub) {
        this.jobs.delete(jobId);
        this.send({ type: "unfollow_job", job_id: jobId });
      }
    };
  }

  /** Call `listener(topics)` when jobs or the inventory change; returns a stop. */
  watchLab(listener) {
    this.lab.add(listener);
    this.connect();
    if (this.lab.size === 1) this.send({ type: "watch_lab" });
    return () => this.lab.delete(listener);
  }

  /** Call `listener(state)` when the channel goes "live" or "reconnecting". */
  onState(listener) {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }
}

export const live = new LiveChannel();
