// Validates the custom resources the chart renders (JSON array on stdin)
// against their own schemas, offline, with @kubernetes-models (make setup
// installs them into $SLUICE_NODE_MODULES). Prints one line per problem and
// exits 1 if there is any.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const modules = process.env.SLUICE_NODE_MODULES || "/opt/sluice/node/node_modules";
const load = (path) => import(pathToFileURL(`${modules}/@kubernetes-models/${path}`).href);
const monitoring = await load("prometheus-operator/monitoring.coreos.com/v1/index.js");
const keda = await load("keda/keda.sh/v1alpha1/index.mjs");
const models = {
  "monitoring.coreos.com/v1/ServiceMonitor": monitoring.ServiceMonitor,
  "monitoring.coreos.com/v1/PrometheusRule": monitoring.PrometheusRule,
  "keda.sh/v1alpha1/ScaledObject": keda.ScaledObject,
};

const docs = JSON.parse(readFileSync(0, "utf8"));
let problems = 0;
for (const doc of docs) {
  const where = `${doc.kind} ${doc.metadata?.name}`;
  const Model = models[`${doc.apiVersion}/${doc.kind}`];
  if (!Model) {
    console.log(`${where}: no schema for ${doc.apiVersion} ${doc.kind}`);
    problems++;
    continue;
  }
  try {
    new Model(doc).validate();
  } catch (e) {
    console.log(`${where}: ${e.message}`);
    problems++;
  }
}
process.exit(problems ? 1 : 0);
