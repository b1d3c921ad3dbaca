/**
 * The propagation verifier. For the controller (continuous mode): after an apply, call
 * `verifyHosts(changed.map((e) => ({ expectation: expectationOfDesired(e), writtenAt })), deps,
 * { timeoutMs })` with `deps.metrics` set: latencies land in registry_bridge_propagation_seconds,
 * hops still failing at the deadline in registry_bridge_propagation_failures_total.
 */
export * from './types.js';
export {
  checkHost,
  checkKube,
  checkProxy,
  checkRegistry,
  checkSync,
  clusterName,
  clusterTypeFor,
  expectationOfDesired,
  expectationOfObject,
} from './compare.js';
export type { HopInputs, KubeServiceEntry, Observed, ProxyObservation, SyncObservation } from './compare.js';
export { parseRegistryz, resolutionName, type RegistryEntry } from './registryz.js';
export { parseConfigDump, proxyViewOf, type ProxyView } from './proxy-config.js';
export { parseSyncz, pushVersionOf, isSameOrLaterPush } from './syncz.js';
export {
  istiodDebugClient,
  tokenFromFile,
  tokenFromRequest,
  type IstiodDebugClient,
  type TokenSource,
} from './istiod-http.js';
export { kubeProbe, type KubeProbe } from './kube-probe.js';
export { XdsProbe, type XdsProbeOptions, type XdsView } from './xds-probe.js';
export { ReconnectingXdsProbe, type ReconnectOptions } from './xds-reconnect.js';
export { verifyHosts, configDumpSource, type VerifyDeps, type VerifyOptions, type VerifyTarget } from './verify.js';
export { renderReport, verifyExitCode, VerifyExit } from './report.js';
