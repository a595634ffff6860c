// A job's runs, tests, devices and steps as a timeline, with the reasons in words.
import { html } from "./html.js";
import { State, Time } from "./components.js";
import { duration, elapsed, plural } from "./format.js";

/** Why a step did not pass, in words (or ""). */
export function stepProblem(step) {
  if (step.error) return step.error;
  if (step.state === "failed" && step.exit_code !== null) return `exited with code ${step.exit_code}`;
  if (step.state === "incomplete") return "did not finish (its agent was lost or it timed out)";
  return "";
}

/** Why a task did not pass: its own error, else its first failing step's. */
export function taskProblem(task) {
  if (task.error) return task.error;
  const step = task.steps.find((s) => stepProblem(s));
  return step ? `step ${step.name} ${stepProblem(step)}` : "";
}

function retries(test) {
  if (test.attempts < 2) return [];
  const last = Math.max(...test.tasks.map((t) => t.attempt));
  return test.tasks
    .filter((t) => t.attempt < last && ["failed", "incomplete", "cancelled"].includes(t.state))
    .map((t) => `attempt ${t.attempt} on ${t.device_name}: ${taskProblem(t) || t.state}`);
}

function Step({ step, task, selected, onSelect, now }) {
  const seconds = elapsed(step.started_at, step.ended_at, now);
  const pressed = selected?.task_id === task.task_id && selected?.step === step.index;
  const problem = stepProblem(step);
  const grow = Math.max(1, Math.min(20, Math.round(Math.log2(1 + (seconds || 0)))));
  return html`<button type="button" class=${`step state-${step.state}`} aria-pressed=${pressed}
    style=${`flex-grow:${grow}`} data-step=${step.name} data-state=${step.state}
    title=${`${step.name} (${step.plugin}): ${step.state}${seconds !== null ? `, ${duration(seconds)}` : ""}${problem ? ` — ${problem}` : ""}`}
    onClick=${() => onSelect(pressed ? null : { task_id: task.task_id, step: step.index })}>
    ${step.name}<small>${step.state}${seconds !== null ? ` · ${duration(seconds)}` : ""}</small>
  </button>`;
}

function Task({ task, selected, onSelect, now }) {
  const problem = task.state !== "passed" ? taskProblem(task) : "";
  return html`<div class="task" data-task=${task.task_id}>
    <div class="task-who">
      <strong>${task.device_name}</strong> <span class="muted">on ${task.agent}</span><br />
      <${State} state=${task.state} />
      <span class="muted small"> attempt ${task.attempt}
        ${task.started_at ? ` · ${duration(elapsed(task.started_at, task.ended_at, now))}` : ""}</span>
    </div>
    <div>
      <div class="steps">${task.steps.map(
        (step) => html`<${Step} step=${step} task=${task} selected=${selected} onSelect=${onSelect} now=${now} />`,
      )}</div>
      ${problem ? html`<p class="reason note note-error">${problem}</p>` : null}
    </div>
  </div>`;
}

function Test({ test, selected, onSelect, now }) {
  const tried = retries(test);
  return html`<div class="test" data-test=${test.name}>
    <div class="test-head">
      <span class="name">${test.name}</span><${State} state=${test.state} />
      <span class="muted small">${plural(test.attempts, "attempt")}
        ${test.started_at ? ` · ${duration(elapsed(test.started_at, test.ended_at, now))}` : ""}</span>
    </div>
    ${test.waiting ? html`<p class="reason note note-wait" data-testid="waiting">${test.waiting}</p>` : null}
    ${test.error ? html`<p class="reason note note-error">${test.error}</p>` : null}
    ${tried.length
      ? html`<p class="reason note note-info">Retried after ${tried.join("; ")}</p>`
      : null}
    ${test.tasks.length
      ? test.tasks.map((task) => html`<${Task} task=${task} selected=${selected} onSelect=${onSelect} now=${now} />`)
      : !test.waiting && test.state === "pending"
        ? html`<p class="muted small">Waiting for devices.</p>`
        : null}
  </div>`;
}

function Reporters({ results, label }) {
  if (!results.length) return null;
  return html`<ul class="problems" aria-label=${label}>${results.map(
    (r) => html`<li class=${r.success ? "note-info" : ""} style=${r.success ? "background:var(--ok-soft);color:var(--ok)" : ""}>
      ${r.success ? "✓" : "✗"} <strong>${r.name}</strong>: ${r.message}</li>`,
  )}</ul>`;
}

/** Every run of the job, newest last. */
export function Timeline({ job, selected, onSelect, now }) {
  if (!job.runs.length) {
    return html`<p class="muted">${job.state === "queued"
      ? html`Queued <${Time} at=${job.created_at} now=${now} />: the hub starts it when it has room.`
      : "No run has started."}</p>`;
  }
  return html`${job.runs.map(
    (run) => html`<div class="run" data-run=${run.number}>
      <h3>Run ${run.number} <${State} state=${run.state} />
        <span class="muted small"> ${run.started_at ? duration(elapsed(run.started_at, run.ended_at, now)) : ""}</span></h3>
      ${run.tests.map((test) => html`<${Test} test=${test} selected=${selected} onSelect=${onSelect} now=${now} />`)}
      <${Reporters} results=${run.reporters} label=${`Reporters of run ${run.number}`} />
    </div>`,
  )}
  <${Reporters} results=${job.final_reporters} label="Final reporters" />`;
}
