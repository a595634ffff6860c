// The page registry: every page of the UI, its path, its place in the navigation and who may
// see it. A new page is one module in pages/ (a default-exported component) and one entry
// here; see docs/ui.md.

export const pages = [
  {
    path: "/",
    title: "Overview",
    nav: "Overview",
    load: () => import("./pages/overview.js"),
  },
  {
    path: "/jobs",
    title: "Jobs",
    nav: "Jobs",
    load: () => import("./pages/jobs.js"),
  },
  {
    path: "/jobs/:id",
    title: "Job",
    load: () => import("./pages/job.js"),
  },
  {
    path: "/agents",
    title: "Agents and devices",
    nav: "Agents & devices",
    load: () => import("./pages/agents.js"),
  },
  {
    path: "/tokens",
    title: "Tokens",
    nav: "Tokens",
    roles: ["admin"],
    load: () => import("./pages/tokens.js"),
  },
];

/** Whether `me` may see `page`. */
export const allowed = (page, me) => !page.roles || page.roles.includes(me.role);
