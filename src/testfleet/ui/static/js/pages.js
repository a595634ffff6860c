// The page registry: every page of the UI, its path, its place in the navigation and who may
// see it. A new page is one module in pages/ (a default-exported component) and one entry
// here; its module (a path below js/) is loaded when the page is first shown. An entry's
// optional `data(params, query)` names the API path of the page's first data, asked for while
// the UI still starts (the page's own first `api()` of that path takes the answer). See
// docs/ui.md.

import { jobsPath } from "./jobs-query.js";

export const pages = [
  {
    path: "/",
    title: "Overview",
    nav: "Overview",
    module: "pages/overview.js",
  },
  {
    path: "/jobs",
    title: "Jobs",
    nav: "Jobs",
    module: "pages/jobs.js",
    data: (params, search) => jobsPath(search),
  },
  {
    path: "/jobs/:id",
    title: "Job",
    module: "pages/job.js",
  },
  {
    path: "/jobs/:id/developer",
    title: "Developer mode",
    module: "pages/developer.js",
  },
  {
    path: "/agents",
    title: "Agents and devices",
    nav: "Agents & devices",
    module: "pages/agents.js",
  },
  {
    path: "/sessions",
    title: "Sessions",
    nav: "Sessions",
    module: "pages/sessions.js",
  },
  {
    path: "/sessions/:id",
    title: "Session",
    module: "pages/session.js",
  },
  {
    path: "/plans",
    title: "Test plans",
    nav: "Test plans",
    module: "pages/plans.js",
  },
  {
    path: "/plans/tasks/:id",
    title: "Plan task",
    module: "pages/plan-task.js",
  },
  {
    path: "/coverage",
    title: "Coverage",
    nav: "Coverage",
    module: "pages/coverage.js",
  },
  {
    path: "/coverage/sessions/:id",
    title: "Coverage session",
    module: "pages/coverage-session.js",
  },
  {
    path: "/coverage/builds/:app/:build",
    title: "Build coverage",
    module: "pages/coverage-build.js",
  },
  {
    path: "/coverage/source",
    title: "Source coverage",
    module: "pages/coverage-source.js",
  },
  {
    path: "/schedules",
    title: "Schedules",
    nav: "Schedules",
    module: "pages/schedules.js",
    data: () => "/schedules",
  },
  {
    path: "/schedules/:id",
    title: "Schedule",
    module: "pages/schedule.js",
  },
  {
    path: "/testcases",
    title: "Test cases",
    nav: "Test cases",
    module: "pages/testcases.js",
  },
  {
    path: "/webhooks",
    title: "Webhooks",
    nav: "Webhooks",
    roles: ["admin"],
    module: "pages/webhooks.js",
    data: () => "/webhooks",
  },
  {
    path: "/webhooks/:id",
    title: "Webhook",
    roles: ["admin"],
    module: "pages/webhook.js",
  },
  {
    path: "/tokens",
    title: "Tokens",
    nav: "Tokens",
    roles: ["admin"],
    module: "pages/tokens.js",
  },
];

/** Whether `me` may see `page`. */
export const allowed = (page, me) => !page.roles || page.roles.includes(me.role);
