// Parses every PromQL expression of the Grafana dashboard with Prometheus's own grammar
// (@prometheus-io/lezer-promql, the parser of the Prometheus UI): a syntax error fails.
// Grafana's variables are replaced by values of the right kind first.
// Usage: node validate_promql.cjs DASHBOARD.json NPM_PREFIX
"use strict";
const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");

const [dashboardPath, prefix] = process.argv.slice(2);
const req = createRequire(path.join(path.resolve(prefix), "package.json"));
const { parser } = req("@prometheus-io/lezer-promql");

const dashboard = JSON.parse(fs.readFileSync(dashboardPath, "utf8"));
const exprs = [];
const walk = (panels) => {
  for (const p of panels || []) {
    walk(p.panels);
    for (const t of p.targets || []) exprs.push({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr });
  }
};
walk(dashboard.panels);
// label_values(SELECTOR, label) is Grafana's; its selector is PromQL.
for (const v of dashboard.templating.list) {
  const q = v.query && v.query.query;
  const m = q && q.match(/^label_values\((.+), *\w+\)$/);
  if (q && !m) exprs.push({ where: `variable ${v.name}`, expr: q });
  if (m) exprs.push({ where: `variable ${v.name}`, expr: m[1] });
}

const problems = [];
for (const { where, expr } of exprs) {
  const text = expr.replace(/\$__rate_interval|\$__interval|\$__range/g, "5m").replace(/\$\w+/g, "x");
  const tree = parser.parse(text);
  let errorAt = -1;
  tree.iterate({ enter: (n) => { if (n.type.isError && errorAt < 0) errorAt = n.from; } });
  if (errorAt >= 0) problems.push(`${where}: syntax error at ${errorAt}: ${text.slice(0, errorAt)} <-- here`);
}
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log(`${exprs.length} PromQL expressions parse`);
