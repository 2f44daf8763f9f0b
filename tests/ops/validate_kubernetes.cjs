// Validates the rendered kustomization (deploy/kubernetes) like `kubeconform -strict` would, plus
// what the sidecar pattern needs. Usage: node validate_kubernetes.cjs RENDERED.yaml NPM_PREFIX
// Each resource is checked against the Kubernetes OpenAPI schema (kubernetes-models), every field
// name against the API's types (a typo is an error, not an ignored field), then the references
// between resources and the sidecar's settings.
"use strict";
const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");

const [renderedPath, prefix] = process.argv.slice(2);
const req = createRequire(path.join(path.resolve(prefix), "package.json"));
const YAML = req("yaml");
const modelsDir = path.dirname(req.resolve("kubernetes-models/package.json"));

const problems = [];
const fail = (where, what) => problems.push(`${where}: ${what}`);

// --- field names, from the models' TypeScript declarations -------------------------------------
// Each interface lists its properties and their types; imports say where each type lives.
const declCache = new Map();
function readDecl(file) {
  if (declCache.has(file)) return declCache.get(file);
  // Maps span lines ("x"?: {\n [key: string]: T;\n };): fold them to Map<T> first.
  const text = fs.readFileSync(file, "utf8").replace(/\{\s*\[key: string\]: ([^;]+);\s*\}/g, "Map<$1>");
  const imports = new Map();
  for (const m of text.matchAll(/import \{ ([^}]+) \} from "([^"]+)";/g)) {
    for (const name of m[1].split(",").map((s) => s.trim())) imports.set(name, m[2]);
  }
  const iface = text.match(/export interface I\w+(?: extends [^{]+)? \{([\s\S]*?)\n\}/);
  let props = null;
  if (iface) {
    props = new Map();
    for (const m of iface[1].matchAll(/^\s+"([^"]+)"\??: (.+);$/gm)) props.set(m[1], m[2]);
  }
  const entry = { file, imports, props };
  declCache.set(file, entry);
  return entry;
}
function resolveImport(fromFile, spec) {
  const base = spec.startsWith(".") ? path.resolve(path.dirname(fromFile), spec)
                                    : path.join(path.dirname(req.resolve(spec.split("/").slice(0, 2).join("/") + "/package.json")), spec.split("/").slice(2).join("/"));
  return base + ".d.ts";
}
function checkFields(value, declFile, where) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return;
  const decl = readDecl(declFile);
  if (!decl.props) return;  // an alias (IntOrString, Quantity, ...): nothing to descend into
  for (const [key, v] of Object.entries(value)) {
    const type = decl.props.get(key);
    if (type === undefined) {
      fail(where, `unknown field "${key}"`);
      continue;
    }
    let t = type.trim();
    let isArray = false;
    const arr = t.match(/^Array<(.+)>$/);
    if (arr) { t = arr[1]; isArray = true; }
    const map = t.match(/^Map<(.+)>$/);
    if (map) t = map[1];
    if (!decl.imports.has(t)) continue;  // a primitive or an enum of strings
    const sub = resolveImport(decl.file, decl.imports.get(t));
    if (!fs.existsSync(sub)) continue;
    const items = isArray ? v : map ? Object.values(v || {}) : [v];
    (Array.isArray(items) ? items : []).forEach((item, i) =>
      checkFields(item, sub, `${where}.${key}${isArray ? `[${i}]` : map ? "{}" : ""}`));
  }
}

// --- each resource --------------------------------------------------------------------------
const docs = YAML.parseAllDocuments(fs.readFileSync(renderedPath, "utf8"))
  .map((d) => { if (d.errors.length) fail("yaml", d.errors[0].message); return d.toJSON(); })
  .filter(Boolean);
if (docs.length === 0) fail("render", "no resources");
const byKind = (kind) => docs.filter((d) => d.kind === kind);
for (const doc of docs) {
  const where = `${doc.kind}/${doc.metadata && doc.metadata.name}`;
  const [group, version] = doc.apiVersion.includes("/") ? doc.apiVersion.split("/") : [null, doc.apiVersion];
  const modulePath = `kubernetes-models/${group ? group + "/" : ""}${version}`;
  let Model;
  try { Model = req(modulePath)[doc.kind]; } catch (e) { /* below */ }
  if (!Model) { fail(where, `no schema for ${doc.apiVersion} ${doc.kind}`); continue; }
  try { new Model(doc).validate(); } catch (e) { fail(where, `schema: ${e.message}`); }
  checkFields(doc, path.join(modelsDir, group || "", version, `${doc.kind}.d.ts`), where);
}

// --- the sidecar pattern ------------------------------------------------------------------------
const deployments = byKind("Deployment");
if (deployments.length !== 1) fail("render", `expected one Deployment, got ${deployments.length}`);
for (const d of deployments) {
  const where = `Deployment/${d.metadata.name}`;
  const pod = d.spec.template.spec;
  const sel = d.spec.selector.matchLabels || {};
  for (const [k, v] of Object.entries(sel))
    if ((d.spec.template.metadata.labels || {})[k] !== v) fail(where, `selector ${k}=${v} does not match the pod labels`);
  const psc = pod.securityContext || {};
  if (psc.runAsNonRoot !== true) fail(where, "pod securityContext.runAsNonRoot must be true");
  if (!(psc.runAsUser > 0)) fail(where, "pod securityContext.runAsUser must be non-root");
  if (!psc.seccompProfile || psc.seccompProfile.type !== "RuntimeDefault") fail(where, "seccompProfile must be RuntimeDefault");
  const volumes = new Map((pod.volumes || []).map((v) => [v.name, v]));
  const sidecars = (pod.initContainers || []).filter((c) => c.restartPolicy === "Always");
  const broker = sidecars.find((c) => c.name === "tokenbroker");
  if (!broker) fail(where, "tokenbroker must be a native sidecar (an initContainer with restartPolicy: Always)");
  for (const c of [...(pod.initContainers || []), ...pod.containers]) {
    const cw = `${where} container ${c.name}`;
    const sc = c.securityContext || {};
    if (sc.readOnlyRootFilesystem !== true) fail(cw, "readOnlyRootFilesystem must be true");
    if (sc.allowPrivilegeEscalation !== false) fail(cw, "allowPrivilegeEscalation must be false");
    if (!sc.capabilities || JSON.stringify(sc.capabilities.drop) !== '["ALL"]') fail(cw, "capabilities must drop ALL");
    if (!c.resources || !c.resources.requests || !c.resources.requests.cpu || !c.resources.requests.memory)
      fail(cw, "resources.requests (cpu, memory) are required");
    for (const m of c.volumeMounts || [])
      if (!volumes.has(m.name)) fail(cw, `mounts unknown volume ${m.name}`);
  }
  for (const v of volumes.values()) {
    if (v.configMap && !byKind("ConfigMap").some((cm) => cm.metadata.name === v.configMap.name))
      fail(where, `volume ${v.name}: ConfigMap ${v.configMap.name} is not in the kustomization`);
    // The Secret holds client secrets: operators create it (README.md), it is never committed.
    if (v.secret && v.secret.secretName !== "tokenbroker-secrets")
      fail(where, `volume ${v.name}: unexpected Secret ${v.secret.secretName}`);
  }
  if (broker) {
    // Probes: /readyz by curl or httpGet, or `tokenbrokerctl [--socket PATH] ready` (its exit
    // code is /readyz's answer); liveness may use /healthz or `tokenbrokerctl health`.
    const probeSockets = [];
    let probesUseTcp = false;
    const probeCheck = (probe, endpoint) => {
      const p = broker[probe];
      const argv = p && p.exec ? p.exec.command : [];
      const cmd = p && (p.exec ? argv.join(" ") : p.httpGet ? p.httpGet.path : "");
      if (argv[0] === "tokenbrokerctl") {
        if (argv[argv.length - 1] !== endpoint) fail(where, `tokenbroker ${probe} must run tokenbrokerctl ${endpoint}`);
        const at = argv.indexOf("--socket");
        probeSockets.push(at >= 0 ? argv[at + 1] : "/run/tokenbroker/tokenbroker.sock");
      } else if (!cmd || !cmd.includes(`/${endpoint}z`)) {
        fail(where, `tokenbroker ${probe} must check /${endpoint}z`);
      } else if (cmd.includes("127.0.0.1:8780")) {
        probesUseTcp = true;
      }
    };
    probeCheck("startupProbe", "ready");
    probeCheck("readinessProbe", "ready");
    if (broker.livenessProbe) probeCheck("livenessProbe", "health");
    const mountOf = (c, vol) => (c.volumeMounts || []).find((m) => m.name === vol);
    const socketVol = [...volumes.values()].find((v) => v.emptyDir && mountOf(broker, v.name) &&
      pod.containers.some((c) => mountOf(c, v.name)));
    if (!socketVol) fail(where, "no emptyDir shared by the broker and the app for the socket");
    const cmName = (volumes.get((broker.volumeMounts || []).map((m) => m.name).find((n) => volumes.get(n) && volumes.get(n).configMap)) || {}).configMap;
    const cm = cmName && byKind("ConfigMap").find((c) => c.metadata.name === cmName.name);
    const toml = cm && cm.data && cm.data["tokenbroker.toml"];
    if (!toml) fail(where, "the broker's ConfigMap has no tokenbroker.toml");
    else {
      const socket = (toml.match(/^socket = "([^"]+)"/m) || [])[1];
      const dir = socketVol && mountOf(broker, socketVol.name).mountPath;
      if (!socket || !dir || path.dirname(socket) !== dir) fail(where, `socket ${socket} is not on the shared emptyDir (${dir})`);
      const listen = (toml.match(/^listen = "([^"]+)"/m) || [])[1];
      if (probesUseTcp && listen !== "127.0.0.1:8780") fail(where, `the probes use 127.0.0.1:8780, the config listens on ${listen}`);
      for (const s of probeSockets)
        if (s !== socket) fail(where, `a probe asks on ${s}, the config's socket is ${socket}`);
      const cfgArg = (broker.args || []).join(" ");
      const cfgMount = mountOf(broker, (broker.volumeMounts || []).find((m) => volumes.get(m.name) && volumes.get(m.name).configMap).name).mountPath;
      if (!cfgArg.includes(`--config ${cfgMount}/tokenbroker.toml`)) fail(where, `--config does not name ${cfgMount}/tokenbroker.toml`);
    }
  }
}

if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log(`${docs.length} resources valid: ${docs.map((d) => `${d.kind}/${d.metadata.name}`).join(", ")}`);
